/* Umbrella header for libhcs, the Linux host compute service library. */
#ifndef HCS_HCS_H
#define HCS_HCS_H

#include "hcs/error.h"
#include "hcs/log.h"
#include "hcs/host.h"
#include "hcs/fs.h"
#include "hcs/layer.h"
#include "hcs/image.h"
#include "hcs/registry.h"
#include "hcs/net.h"
#include "hcs/compute.h"
#include "hcs/vm.h"
#include "hcs/disk.h"
#include "hcs/process.h"
#include "hcs/events.h"
#include "hcs/operation.h"

#endif
