/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "pp-error.h"

G_DEFINE_QUARK(postpack-error-quark, pp_error)
