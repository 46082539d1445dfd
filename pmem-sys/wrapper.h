/* Headers bindgen reads. <ndctl/libndctl.h> includes a ccan header that is not installed:
 * ARRAY_SIZE is what it needs from it. */
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif
#include <stdbool.h>
#include <stddef.h>
#include <ndctl/libndctl.h>
#include <ndctl/ndctl.h>
#include <daxctl/libdaxctl.h>
