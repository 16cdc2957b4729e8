/* hcs-runtime: hcs as an OCI runtime (runc's command line over libhcs).
 * Shared declarations of the runtime's files. */
#ifndef HCS_RUNTIME_H
#define HCS_RUNTIME_H

#include "core/util.h"
#include "hcs/compute.h"
#include "hcs/process.h"

/* spec.c: the bundle's config.json (runtime-spec 1.1) as an hcs compute
 * document.  Every refusal names the config.json field. */
json_t *rt_translate(json_t *spec, const char *bundle, const char *id, hcs_error_t *err);
/* An OCI `process` object (exec --process) as ProcessParameters. */
json_t *rt_translate_process(json_t *proc, const char *where, hcs_error_t *err);
/* process.capabilities into `dst`: Capabilities (bounding) and
 * CapabilitySets; `src` names the file in errors. */
int rt_translate_caps(json_t *caps, const char *src, json_t *dst, hcs_error_t *err);
/* A config.json template (`spec`). */
json_t *rt_spec_template(bool rootless);
/* The runtime-spec features document (`features`). */
json_t *rt_features(void);
/* Signal by name ("KILL", "SIGKILL") or number; -1 when unknown. */
int rt_parse_signal(const char *s);

/* seccomp.c: compile linux.seccomp into a raw BPF program at `path`;
 * *notify: it has SCMP_ACT_NOTIFY rules (init needs a listener). */
int rt_seccomp_compile(json_t *sc, const char *path, bool *notify, hcs_error_t *err);
/* Send the listener `fd` and the container process state to the agent. */
int rt_seccomp_send_listener(int sock, int fd, json_t *state, const char *metadata, pid_t pid, hcs_error_t *err);

/* hooks.c */
/* Run the hooks of `spec.hooks[name]` with `state` on their stdin; the
 * first failure is returned.  `ns_pid` > 0: run them in the namespaces of
 * that process (createContainer, startContainer). */
int rt_run_hooks(json_t *hooks, const char *name, json_t *state, pid_t ns_pid, hcs_error_t *err);
/* Send `fd` over the unix socket at `path` with SCM_RIGHTS (runc's console
 * socket protocol). */
int rt_send_console(const char *path, int fd, hcs_error_t *err);
/* Connect to the console socket early so a bad path fails before create;
 * `what` names it in errors ("console socket"). */
int rt_console_connect(const char *path, hcs_error_t *err);
int rt_unix_connect(const char *path, const char *what, hcs_error_t *err);
int rt_send_fd(int sock, int fd, hcs_error_t *err);

#endif
