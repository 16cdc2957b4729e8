/* The monitor of a VM: as a container's (src/compute/monitor.c), detached by
 * a double fork + setsid, no daemon.  It creates the VM's cgroup with the
 * memory and CPU limits, runs QEMU in it (vCPUs stopped: Created), waits
 * for QMP, writes config.json and state.json, opens the agent relay's
 * sockets, then execs the small `hcs-monitor --vm` (watch.c), which relays,
 * waits until QEMU exits and records the exit (exit.json, ExitType) like a
 * container's monitor: the generic wait, events and delete serve both. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "core/crash.h"
#include "vm/vm.h"

typedef struct {
  hcs_system_t *cs;
  hcs_vm_config_t *c;
  const hcs_cgroup_ops_t *cg;
  int sock, create_lock, incoming;
  const char *accel;
} vm_launch_t;

/* QEMU's own allocations besides guest RAM (device models, TCG's 64 MiB
 * translation cache, I/O buffers), counted in the cgroup's limit. */
#define HCS_VM_OVERHEAD_MB 320

/* The first lines QEMU wrote to its log (why it exited). */
static char *qemu_said(const char *dir) {
  cleanup_free char *path = hcs_xasprintf("%s/qemu.log", dir), *text = NULL;
  if (hcs_read_file(path, &text, NULL, NULL) < 0 || text[0] == '\0') return hcs_xstrdup("no message");
  size_t n = strlen(text);
  while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
    text[--n] = '\0';
  for (char *p = text; *p; p++)
    if (*p == '\n') *p = ' ';
  if (n > 400) strcpy(text + 397, "...");
  return steal_ptr(text);
}

static void remove_taps(const hcs_vm_config_t *c) {
  for (size_t i = 0; i < c->n_nics; i++)
    if (c->nics[i].tap[0]) hcs_net_tap_remove(c->nics[i].tap, NULL);
}

/* qemu.json: what a killed create leaves running, for hcs_vm_sweep_qemu.
 * Written before the cgroup is made (Cgroup alone), then by QEMU's own
 * process before it enters the cgroup and execs (its Pid, start time and
 * taps): no QEMU runs that the record does not name. */
static int write_qemu_record(vm_launch_t *l, pid_t pid, hcs_error_t *err) {
  cleanup_json json_t *r = json_pack("{s:s}", "Cgroup", l->cs->cgroup);
  if (pid > 0) {
    json_object_set_new(r, "Pid", json_integer(pid));
    json_object_set_new(r, "PidStartTime", json_integer((json_int_t)hcs_pid_start_time(pid)));
    json_t *taps = json_array();
    for (size_t i = 0; i < l->c->n_nics; i++)
      json_array_append_new(taps, json_string(l->c->nics[i].tap));
    json_object_set_new(r, "Taps", taps);
  }
  cleanup_free char *path = hcs_xasprintf("%s/qemu.json", l->cs->dir);
  return hcs_state_write_json(path, r, err);
}

static __attribute__((noreturn)) void exec_qemu(vm_launch_t *l, int logfd) {
  hcs_error_t err = NULL;
  if (write_qemu_record(l, getpid(), &err) < 0) {
    dprintf(logfd, "%s\n", hcs_error_message(err));
    _exit(125);
  }
  /* Above stdio first: a creator without stdin may have been given fd 0
   * for the state file, which /dev/null would replace. */
  if (logfd < 3) logfd = fcntl(logfd, F_DUPFD_CLOEXEC, 3);
  if (l->incoming >= 0 && l->incoming < 3) l->incoming = fcntl(l->incoming, F_DUPFD_CLOEXEC, 3);
  /* QEMU's own mount namespace, where the hot-added shares are bound
   * (share.c); it goes with QEMU. */
  if (hcs_vm_share_setup(l->c, l->cs->dir, &err) < 0) {
    dprintf(logfd, "%s\n", hcs_error_message(err));
    _exit(125);
  }
  /* Into the cgroup before exec: QEMU's first allocation is counted. */
  if (l->cg && l->cg->enter_self(l->cs->cgroup, &err) < 0) {
    dprintf(logfd, "%s\n", hcs_error_message(err));
    _exit(125);
  }
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  dup2(null, 0);
  dup2(logfd, 1);
  dup2(logfd, 2);
  int keep = l->incoming;
  if (keep >= 0) {
    /* Move it to 3 (the command line names it) and keep it across exec. */
    if (keep != 3) {
      dup2(keep, 3);
      keep = 3;
    } else {
      fcntl(3, F_SETFD, 0);
    }
    syscall(SYS_close_range, 4, ~0U, 0);
  } else {
    syscall(SYS_close_range, 3, ~0U, 0);
  }
  char **argv = hcs_qemu_argv(l->c, l->cs->id, l->cs->dir, l->accel, keep);
  execvp(argv[0], argv);
  dprintf(2, "exec `%s`: %s\n", argv[0], strerror(errno));
  _exit(127);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for QMP (and a restore's incoming migration) while watching QEMU:
 * one that exits first is an error with what it wrote. */
static int wait_qemu_ready(vm_launch_t *l, pid_t pid, int *status, hcs_error_t *err) {
  cleanup_free char *qmp = hcs_xasprintf("%s/qmp.sock", l->cs->dir);
  int64_t deadline = now_ms() + 60000;
  hcs_qmp_t *q = NULL;
  for (;;) {
    if (waitpid(pid, status, WNOHANG) == pid) {
      cleanup_free char *said = qemu_said(l->cs->dir);
      return hcs_error_make(err, 0, "QEMU exited (status %d): %s",
                            WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status), said);
    }
    hcs_error_t e = NULL;
    if (q == NULL) q = hcs_qmp_connect(qmp, 0, &e);
    if (q) {
      json_t *r = hcs_qmp_execute(q, "query-status", NULL, -1, &e);
      const char *st = json_string_value(json_object_get(r, "status"));
      bool incoming = st && strcmp(st, "inmigrate") == 0;
      json_decref(r);
      if (r && !incoming) {
        hcs_qmp_close(q);
        return 0;
      }
      if (r == NULL) hcs_qmp_close(q), q = NULL;
    }
    if (now_ms() > deadline) {
      hcs_qmp_close(q);
      hcs_error_release(&e);
      return hcs_error_make(err, ETIMEDOUT, "QEMU did not get ready within 60 s");
    }
    hcs_error_release(&e);
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

static int write_state(vm_launch_t *l, pid_t pid, hcs_error_t *err) {
  hcs_system_t *cs = l->cs;
  cleanup_free char *cfg_path = hcs_xasprintf("%s/config.json", cs->dir);
  if (hcs_state_write_json(cfg_path, cs->config, err) < 0) return -1;
  cleanup_free char *now = hcs_now_rfc3339();
  cleanup_json json_t *st = json_pack(
      "{s:s,s:s?,s:s,s:i,s:I,s:i,s:I,s:s,s:s,s:b,s:s,s:s,s:I,s:I}", "Id", cs->id, "Owner", l->c->owner, "SystemType",
      "VirtualMachine", "Pid", (int)pid, "PidStartTime", (json_int_t)hcs_pid_start_time(pid), "MonitorPid",
      (int)getpid(), "MonitorStartTime", (json_int_t)hcs_pid_start_time(getpid()), "Cgroup", cs->cgroup, "CgroupDriver",
      l->cg ? l->cg->name : "none", "Started", 0, "CreatedTime", now, "Accelerator", l->accel, "MemorySizeInMB",
      (json_int_t)l->c->memory_mb, "ProcessorCount", (json_int_t)l->c->cpus);
  if (l->c->restore) json_object_set_new(st, "RestoredFrom", json_string(l->c->restore));
  if (l->c->n_nics) {
    json_t *taps = json_array(), *by = json_object();
    for (size_t i = 0; i < l->c->n_nics; i++) {
      json_array_append_new(taps, json_string(l->c->nics[i].tap));
      json_object_set_new(by, l->c->nics[i].name, json_string(l->c->nics[i].tap));
    }
    json_object_set_new(st, "Taps", taps);
    json_object_set_new(st, "NicTaps", by);
  }
  cleanup_free char *path = hcs_xasprintf("%s/state.json", cs->dir);
  if (hcs_state_write_json(path, st, err) < 0) return -1;
  if (l->create_lock >= 0) close(l->create_lock), l->create_lock = -1;
  cleanup_free char *text = json_dumps(st, JSON_COMPACT);
  hcs_event_emit(cs->run_root, "system", "created", cs->id, l->c->owner,
                 json_pack("{s:i,s:s}", "Pid", (int)pid, "SystemType", "VirtualMachine"));
  hcs_send_msg(l->sock, HCS_MSG_STATE, text, strlen(text), -1);
  return 0;
}

static __attribute__((noreturn)) void run_watch(vm_launch_t *l, pid_t pid);

static __attribute__((noreturn)) void run_monitor(vm_launch_t *l) {
  hcs_error_t err = NULL;
  hcs_system_t *cs = l->cs;
  if (hcs_monitor_become("hcs-vm-monitor") < 0) _exit(1);
  hcs_resources_t r = {
      .memory_mb = l->c->memory_mb + HCS_VM_OVERHEAD_MB, .cpu_max = l->c->cpu_max, .cpu_weight = l->c->cpu_weight};
  if (write_qemu_record(l, 0, &err) < 0 || (l->cg && l->cg->create(cs->cgroup, &r, &err) < 0)) {
    hcs_monitor_send_error(l->sock, &err);
    _exit(1);
  }
  cleanup_free char *log = hcs_xasprintf("%s/qemu.log", cs->dir);
  int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  pid_t pid = logfd < 0 ? -1 : fork();
  if (pid == 0) exec_qemu(l, logfd);
  int status = 0;
  if (pid < 0) {
    hcs_error_make(&err, errno, "start QEMU");
  } else if ((hcs_pause_point("vm monitor: QEMU started"), wait_qemu_ready(l, pid, &status, &err)) == 0) {
    if (write_state(l, pid, &err) == 0) {
      if (logfd >= 0) close(logfd);
      run_watch(l, pid);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  /* Failed create: nothing of the VM stays (the creator removes the
   * directory once it reads the error). */
  if (l->cg) l->cg->destroy(cs->cgroup, NULL);
  hcs_vm_remove_files(cs);
  remove_taps(l->c);
  hcs_monitor_send_error(l->sock, &err);
  _exit(1);
}

/* The monitor once QEMU runs and state.json is written: the small
 * hcs-monitor program in place of this fork of the creator (watch.c),
 * given QEMU's pidfd and the relay's two sockets, nothing else of ours. */
static __attribute__((noreturn)) void run_watch(vm_launch_t *l, pid_t pid) {
  hcs_system_t *cs = l->cs;
  hcs_error_t err = NULL;
  hcs_vm_watch_t w = {.base = hcs_watch_base_of(cs, l->c->owner, l->cg, pid, (int)syscall(SYS_pidfd_open, pid, 0)),
                      .exec_fd = -1,
                      .agent_fd = -1};
  char nonce[HCS_VM_NONCE_SIZE];
  /* Without the relay (an error) the VM runs on, its processes unreachable. */
  w.exec_fd = hcs_vm_relay_listen(cs->dir, &err);
  if (w.exec_fd >= 0) w.agent_fd = hcs_vm_relay_agent(cs->dir, nonce, &err);
  if (w.agent_fd >= 0) {
    w.nonce = nonce;
  } else {
    hcs_warning("VM `%s`: no agent relay: %s", cs->id, hcs_error_message(err));
    hcs_error_release(&err);
    if (w.exec_fd >= 0) close(w.exec_fd), w.exec_fd = -1;
    cleanup_free char *path = hcs_xasprintf("%s/exec.sock", cs->dir);
    unlink(path);
  }
  /* The creator returns once told; exec.sock listens already. */
  hcs_send_msg(l->sock, HCS_MSG_READY, "", 0, -1);
  int keep[3] = {w.base.pidfd, w.exec_fd, w.agent_fd};
  hcs_monitor_close_all_but(keep, 3);
  int null = open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; fd++)
    dup2(null, fd);
  if (null > 2) close(null);
  const char *program = hcs_watch_program();
  char **argv = hcs_vm_watch_argv(&w, program);
  for (int i = 0; i < 3; i++)
    if (keep[i] >= 0) fcntl(keep[i], F_SETFD, 0);
  execve(program, argv, environ);
  for (int i = 0; i < 3; i++)
    if (keep[i] >= 0) fcntl(keep[i], F_SETFD, FD_CLOEXEC);
  hcs_vm_watch_run(&w);
}

int hcs_vm_launch(hcs_system_t *cs, hcs_vm_config_t *c, int create_lock, hcs_error_t *err) {
  vm_launch_t l = {.cs = cs, .c = c, .cg = hcs_cgroup_ops(), .create_lock = create_lock, .incoming = -1};
  l.accel = hcs_vm_accel_probe(cs->run_root, c->kernel);
  if (c->restore) {
    json_t *head = NULL;
    if ((l.incoming = hcs_vm_save_open(c->restore, &head, err)) < 0) return hcs_error_wrap(err, "restore `%s`", cs->id);
    json_t *slots = json_object_get(head, "PciSlots");
    if (json_is_object(slots)) c->pci_slots = json_incref(slots);
    json_decref(head);
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    if (l.incoming >= 0) close(l.incoming);
    return hcs_error_make(err, errno, "socketpair");
  }
  pid_t first = fork();
  if (first < 0) {
    close(sv[0]);
    close(sv[1]);
    if (l.incoming >= 0) close(l.incoming);
    return hcs_error_make(err, errno, "fork the monitor of `%s`", cs->id);
  }
  if (first == 0) {
    close(sv[0]);
    l.sock = sv[1];
    setsid();
    if (fork() == 0) run_monitor(&l);
    _exit(0);
  }
  close(sv[1]);
  if (l.incoming >= 0) close(l.incoming);
  cleanup_close int sock = sv[0];
  int st;
  while (waitpid(first, &st, 0) < 0 && errno == EINTR) {
  }
  char msg[2048];
  int type, fd;
  bool have_state = false, ready = false;
  while (!have_state || !ready) {
    ssize_t n = hcs_recv_msg(sock, &type, msg, sizeof msg - 1, &fd);
    if (n < 0) return hcs_error_make(err, errno, "read from the monitor of `%s`", cs->id);
    if (n == 0) return hcs_error_make(err, 0, "create `%s`: the monitor exited", cs->id);
    msg[n] = '\0';
    if (fd >= 0) close(fd);
    if (type == HCS_MSG_STATE) {
      json_decref(cs->state);
      cs->state = json_loads(msg, 0, NULL);
      have_state = true;
    } else if (type == HCS_MSG_READY) {
      ready = true;
    } else {
      return hcs_error_make(err, 0, "create `%s`: %s", cs->id, msg);
    }
  }
  return 0;
}
