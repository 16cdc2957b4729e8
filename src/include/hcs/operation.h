/* Operations: the HCS asynchronous model (HcsCreateOperation,
 * HcsWaitForOperationResult, HcsSetOperationCallback, HcsCancelOperation).
 *
 * An `_async` verb takes an operation and returns at once; the verb runs on
 * a thread of its own (one per operation) and completes the operation:
 * its status, error and result document are stored, then the callback (if
 * any) runs on that thread, then hcs_operation_wait returns and the fd
 * polls readable.  The synchronous verbs are unchanged.
 *
 * Threading: the callback runs on the operation's thread, once, after the
 * result is stored; it may call any hcs function, including the getters of
 * its own operation, but not hcs_operation_close on it.  A handle (system,
 * process, store) given to an `_async` verb belongs to the operation until
 * it completes: do not use it from another thread meanwhile.  Strings and
 * documents are copied; option structs (and what they point to) must stay
 * valid until completion.
 *
 * Cancel: hcs_operation_cancel asks the verb to stop where it safely can:
 * a layer or image import stops before its next archive entry and rolls back
 * (nothing is left), a shutdown stops waiting (SIGTERM was sent; the system
 * shuts down on its own).  Other verbs run to completion.  A cancelled verb
 * completes with ECANCELED. */
#ifndef HCS_OPERATION_H
#define HCS_OPERATION_H

#include <stdbool.h>

#include "hcs/compute.h"
#include "hcs/error.h"
#include "hcs/export.h"
#include "hcs/image.h"
#include "hcs/layer.h"
#include "hcs/process.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hcs_operation_s hcs_operation_t;
typedef void (*hcs_operation_callback_t)(hcs_operation_t *op, void *ctx);

/* A new operation, with an optional completion callback.  An operation
 * runs one verb; create another for the next. */
HCS_EXPORT hcs_operation_t *hcs_operation_create(hcs_operation_callback_t cb, void *ctx);
/* Wait for completion: 1 completed, 0 timed out (timeout_ms < 0: forever),
 * -1 error (EINTR: a signal interrupted the wait; EINVAL: never started). */
HCS_EXPORT int hcs_operation_wait(hcs_operation_t *op, int timeout_ms, hcs_error_t *err);
/* After completion: the verb's status (0 or -1); on -1 a copy of its error
 * in *err.  *result (if not NULL) gets a malloc'd copy of the result
 * document (or NULL): {"Id": ...} for creates and imports, the image list
 * for an image import. */
HCS_EXPORT int hcs_operation_result(hcs_operation_t *op, char **result, hcs_error_t *err);
/* The handle a create made (system or process), once; the caller owns it. */
HCS_EXPORT hcs_system_t *hcs_operation_take_system(hcs_operation_t *op);
HCS_EXPORT hcs_process_t *hcs_operation_take_process(hcs_operation_t *op);
/* Readable once the operation completed (never read it).  Owned by op. */
HCS_EXPORT int hcs_operation_fd(hcs_operation_t *op);
HCS_EXPORT bool hcs_operation_completed(hcs_operation_t *op);
/* Ask the verb to stop (see above); 0, or -1 when already completed. */
HCS_EXPORT int hcs_operation_cancel(hcs_operation_t *op, hcs_error_t *err);
/* Wait for completion (a verb is never abandoned mid-way), free.  NULL ok. */
HCS_EXPORT void hcs_operation_close(hcs_operation_t *op);

/* The long verbs, asynchronous.  -1 (and nothing started) if op is in use. */
HCS_EXPORT int hcs_compute_create_async(const char *root, const char *id, const char *config,
                                        const hcs_compute_stdio_t *stdio, hcs_operation_t *op, hcs_error_t *err);
HCS_EXPORT int hcs_compute_start_async(hcs_system_t *cs, hcs_operation_t *op, hcs_error_t *err);
HCS_EXPORT int hcs_compute_shutdown_async(hcs_system_t *cs, int timeout_ms, hcs_operation_t *op, hcs_error_t *err);
HCS_EXPORT int hcs_compute_terminate_async(hcs_system_t *cs, hcs_operation_t *op, hcs_error_t *err);
HCS_EXPORT int hcs_compute_pause_async(hcs_system_t *cs, hcs_operation_t *op, hcs_error_t *err);
HCS_EXPORT int hcs_compute_resume_async(hcs_system_t *cs, hcs_operation_t *op, hcs_error_t *err);
HCS_EXPORT int hcs_compute_modify_async(hcs_system_t *cs, const char *request, hcs_operation_t *op, hcs_error_t *err);
HCS_EXPORT int hcs_compute_delete_async(hcs_system_t *cs, bool force, hcs_operation_t *op, hcs_error_t *err);
HCS_EXPORT int hcs_process_create_async(hcs_system_t *cs, const char *params, const hcs_compute_stdio_t *stdio,
                                        hcs_operation_t *op, hcs_error_t *err);
HCS_EXPORT int hcs_layer_import_file_async(hcs_layer_store_t *store, const char *path,
                                           const hcs_layer_import_opts_t *opts, hcs_operation_t *op, hcs_error_t *err);
HCS_EXPORT int hcs_layer_export_file_async(hcs_layer_store_t *store, const char *id, const char *path,
                                           const hcs_layer_export_opts_t *opts, hcs_operation_t *op, hcs_error_t *err);
HCS_EXPORT int hcs_image_import_async(hcs_image_store_t *store, const char *path, const hcs_image_import_opts_t *opts,
                                      hcs_operation_t *op, hcs_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
