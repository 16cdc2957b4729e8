/* FNV-1a, 64 bits: short, stable names derived from content (cache files,
 * pinned programs, interface names).  Not for anything an attacker picks
 * the input of to collide on purpose where that would matter. */
#include "core/util.h"

uint64_t hcs_fnv1a(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
