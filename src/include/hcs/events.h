/* Events: what happens to compute systems, processes, networks and
 * endpoints, without a daemon.  Whoever acts appends one JSON record per
 * event to the run root's event journal (<run root>/events/events.log, one
 * O_APPEND write each, rotated by size to events.log.1): the monitor for
 * created/exited/oom, the caller of start/pause/resume/shutdown/modify/
 * delete, hcs_process_wait for a process's exit, the network verbs.  If a
 * monitor was killed, whoever next finds the system stopped (open, wait,
 * properties, delete) writes its `exited` event (ExitType Unknown), once.
 * Subscribers follow the journal with inotify (docs/events.md).
 *
 * A record: {"Time": "RFC 3339 UTC, ns", "TimeNano": ns since the epoch,
 * "Type": "system"|"process"|"network"|"endpoint", "Action": "created"|
 * "started"|"paused"|"resumed"|"shutdown"|"exited"|"oom"|"modified"|
 * "deleted", "Id": ..., "Owner": ..., "Attributes": {...}} (exited:
 * ExitCode, ExitType, ExitSignal; process: Pid and the system's Id). */
#ifndef HCS_EVENTS_H
#define HCS_EVENTS_H

#include "hcs/error.h"
#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hcs_events_s hcs_events_t;

/* Subscribe to the events of a state root (NULL: $HCS_ROOT or
 * /var/lib/hcs).  filter: NULL or {"Ids": [...], "Owners": [...],
 * "Types": [...], "Actions": [...], "Since": ns, "Until": ns} (each list
 * matches any of its values; the lists all must match).  Without Since the
 * subscription starts at the end of the journal (new events only); with
 * it, the journal's records from that time are delivered first. */
HCS_EXPORT hcs_events_t *hcs_events_subscribe(const char *root, const char *filter, hcs_error_t *err);
/* The next matching event as a malloc'd JSON record, waiting up to
 * timeout_ms (< 0: forever).  NULL with *err untouched on time-out or once
 * past Until (hcs_events_ended); NULL with an error otherwise (EINTR when a
 * signal interrupted the wait).  Events come in the journal's order. */
HCS_EXPORT char *hcs_events_next(hcs_events_t *sub, int timeout_ms, hcs_error_t *err);
/* True once an Until was given and passed. */
HCS_EXPORT bool hcs_events_ended(hcs_events_t *sub);
/* A pollable fd (readable when the journal may have grown): on readiness
 * call hcs_events_next(sub, 0, ...) until it returns NULL.  Owned by sub. */
HCS_EXPORT int hcs_events_fd(hcs_events_t *sub);
/* Deliver events to cb(event_json, ctx) from a thread of the subscription
 * (one thread per subscription, events in order, one at a time).  The
 * callback may call any hcs function but hcs_events_close on its own
 * subscription; the event text is valid during the call only.  Once set,
 * do not call hcs_events_next on it. */
typedef void (*hcs_event_callback_t)(const char *event, void *ctx);
HCS_EXPORT int hcs_events_set_callback(hcs_events_t *sub, hcs_event_callback_t cb, void *ctx, hcs_error_t *err);
/* Stop (joins the callback thread, so no callback runs after it returns)
 * and free.  Safe on NULL. */
HCS_EXPORT void hcs_events_close(hcs_events_t *sub);

#ifdef __cplusplus
}
#endif
#endif
