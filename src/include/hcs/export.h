/* Symbol visibility for libhcs: the library is built with -fvisibility=hidden
 * and only what is marked HCS_EXPORT is part of the ABI. */
#ifndef HCS_EXPORT_H
#define HCS_EXPORT_H

#if defined(HCS_BUILDING_LIBRARY)
#define HCS_EXPORT __attribute__((visibility("default")))
#else
#define HCS_EXPORT
#endif

#endif
