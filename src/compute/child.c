/* What a process does in a compute system between its fork and its exec,
 * for the system's init (spawn.c) and for processes started in it
 * (process.c): the user and groups from the container's own files, the
 * inherited fds closed, the working directory entered without leaving the
 * root, rlimits, capabilities, no_new_privs and seccomp, then execve. */
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "compute/compute.h"

extern char **environ;

static bool all_digits(const char *s) { return *s && strspn(s, "0123456789") == strlen(s); }

/* Look names up in the container's own /etc/passwd and /etc/group (we are
 * in its mount namespace); never through NSS, which could load the
 * container's libraries into this process. */
/* The home directory of the user last resolved (child only): HOME when the
 * process environment has none, as docker sets it ("/" without an entry). */
static char resolved_home[4096];

int hcs_resolve_user(const char *user, uid_t *uid, gid_t *gid, gid_t **groups, size_t *ngroups) {
  char buf[256];
  resolved_home[0] = '\0';
  char *gpart = NULL, *name = NULL;
  *uid = 0, *gid = 0, *groups = NULL, *ngroups = 0;
  if (user == NULL || !*user) user = "0";
  snprintf(buf, sizeof buf, "%s", user);
  if ((gpart = strchr(buf, ':'))) *gpart++ = '\0';
  bool have_gid = false;
  if (all_digits(buf)) {
    *uid = (uid_t)strtoul(buf, NULL, 10);
  } else {
    name = buf;
  }
  FILE *f = fopen("/etc/passwd", "re");
  if (f) {
    struct passwd *pw;
    while ((pw = fgetpwent(f))) {
      if (name ? strcmp(pw->pw_name, name) == 0 : pw->pw_uid == *uid) {
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
        have_gid = true;
        if (pw->pw_dir) snprintf(resolved_home, sizeof resolved_home, "%s", pw->pw_dir);
        if (name == NULL) name = strdup(pw->pw_name); /* child only: leak is moot */
        break;
      }
    }
    fclose(f);
  }
  if (!all_digits(buf) && !have_gid) {
    errno = ENOENT;
    return -1;
  }
  if (gpart) {
    if (all_digits(gpart)) {
      *gid = (gid_t)strtoul(gpart, NULL, 10);
    } else {
      bool found = false;
      f = fopen("/etc/group", "re");
      struct group *gr;
      while (f && (gr = fgetgrent(f)))
        if (strcmp(gr->gr_name, gpart) == 0) {
          *gid = gr->gr_gid;
          found = true;
          break;
        }
      if (f) fclose(f);
      if (!found) {
        errno = ESRCH;
        return -1;
      }
    }
  }
  static gid_t list[64];
  size_t n = 0;
  list[n++] = *gid;
  f = name ? fopen("/etc/group", "re") : NULL;
  struct group *gr;
  while (f && n < 64 && (gr = fgetgrent(f)))
    for (char **m = gr->gr_mem; m && *m; m++)
      if (strcmp(*m, name) == 0 && gr->gr_gid != *gid) list[n++] = gr->gr_gid;
  if (f) fclose(f);
  *groups = list;
  *ngroups = n;
  return 0;
}

/* Close every fd the caller left open but stdio, `keep` and `keep2` (the
 * error channel and the creator socket, marked close-on-exec) and the
 * first `npreserve` after stdio (PreserveFds, left open across execve):
 * nothing else of the host may stay reachable through /proc/self/fd
 * (CVE-2024-21626). */
static void close_inherited(int keep, int keep2, int npreserve) {
  unsigned from = 3 + (unsigned)npreserve;
  int k[2] = {keep < keep2 ? keep : keep2, keep < keep2 ? keep2 : keep};
  for (int i = 0; i < 2; i++) {
    if (k[i] < (int)from) continue;
    if ((unsigned)k[i] > from) syscall(SYS_close_range, from, (unsigned)k[i] - 1, 0U);
    from = (unsigned)k[i] + 1;
  }
  syscall(SYS_close_range, from, ~0U, 0U);
  if (keep >= 0) fcntl(keep, F_SETFD, FD_CLOEXEC);
  if (keep2 >= 0) fcntl(keep2, F_SETFD, FD_CLOEXEC);
  for (int fd = 3; fd < 3 + npreserve; fd++)
    if (fd != keep && fd != keep2) fcntl(fd, F_SETFD, 0);
}

/* Enter the working directory resolved inside the container's root, never
 * through a magic link (/proc/self/fd/N, /proc/1/cwd), then check that the
 * result is below the root: getcwd fails (or says "(unreachable)") for a
 * directory outside it. */
static int enter_cwd(const char *cwd) {
  struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return -1;
  int fd = (int)syscall(SYS_openat2, root, cwd, &how, sizeof how);
  int saved = errno;
  close(root);
  if (fd < 0) {
    errno = saved;
    return -1;
  }
  int r = fchdir(fd);
  saved = errno;
  close(fd);
  errno = saved;
  if (r < 0) return -1;
  char here[PATH_MAX];
  if (getcwd(here, sizeof here) == NULL || here[0] != '/') {
    errno = EXDEV;
    return -1;
  }
  return 0;
}

int hcs_child_prepare(const hcs_proc_spec_t *p, const hcs_security_t *sec, hcs_child_user_t *u, int keep, int keep2,
                      char *msg, size_t size) {
  sigset_t all;
  sigemptyset(&all);
  for (int sig = 1; sig < NSIG; sig++)
    signal(sig, SIG_DFL);
  sigprocmask(SIG_SETMASK, &all, NULL);
  if (hcs_resolve_user(p->user, &u->uid, &u->gid, &u->groups, &u->ngroups) < 0) {
    snprintf(msg, size, "unknown %s in `%s` (looked up in the container's /etc/%s)", errno == ESRCH ? "group" : "user",
             p->user, errno == ESRCH ? "group" : "passwd");
    return -1;
  }
  /* AdditionalGroups join the user's own (the list has room for 64). */
  for (size_t i = 0; i < p->n_extra_groups; i++) {
    bool have = false;
    for (size_t j = 0; j < u->ngroups; j++)
      have |= u->groups[j] == p->extra_groups[i];
    if (have) continue;
    if (u->ngroups >= 64) {
      snprintf(msg, size, "too many supplementary groups (at most 64)");
      return -1;
    }
    u->groups[u->ngroups++] = p->extra_groups[i];
  }
  /* PreserveFds counts from 3: each must be open (the caller checked;
   * this is what the process gets). */
  for (int fd = 3; fd < 3 + p->preserve_fds; fd++)
    if (fcntl(fd, F_GETFD) < 0) {
      snprintf(msg, size, "preserve fd %d: %s", fd, strerror(errno));
      return -1;
    }
  close_inherited(keep, keep2, p->preserve_fds);
  /* Container processes get Docker's umask whatever the caller's was,
   * unless the parameters name one. */
  umask(p->umask >= 0 ? (mode_t)p->umask : 022);
  if (enter_cwd(p->cwd ? p->cwd : "/") < 0) {
    snprintf(msg, size, "change to working directory `%s` inside the container: %s", p->cwd ? p->cwd : "/",
             strerror(errno));
    return -1;
  }
  for (size_t i = 0; i < sec->n_rlimits; i++)
    if (setrlimit(sec->rlimits[i].resource, &sec->rlimits[i].lim) < 0) {
      snprintf(msg, size, "set rlimit %d: %s", sec->rlimits[i].resource, strerror(errno));
      return -1;
    }
  if (hcs_security_apply_walls(sec) < 0) {
    snprintf(msg, size, "apply the security profile: %s", strerror(errno));
    return -1;
  }
  return 0;
}

void hcs_child_finish(const hcs_proc_spec_t *p, const hcs_security_t *sec, const hcs_child_user_t *u, int errfd) {
  if (hcs_security_apply_user(sec, u->uid, u->gid, u->groups, u->ngroups) < 0) {
    hcs_child_report(errfd, errno, "apply the security profile");
    _exit(127);
  }
  environ = p->env;
  if (getenv("HOME") == NULL) setenv("HOME", resolved_home[0] ? resolved_home : "/", 0);
  execvp(p->argv[0], p->argv);
  hcs_child_report_exec(errfd, errno, p->argv[0]);
  _exit(127);
}

int hcs_child_exec(const hcs_proc_spec_t *p, const hcs_security_t *sec, int errfd) {
  hcs_child_user_t u;
  char msg[1024];
  if (hcs_child_prepare(p, sec, &u, errfd, -1, msg, sizeof msg) < 0) {
    hcs_child_report(errfd, 0, "%s", msg);
    _exit(127);
  }
  hcs_child_finish(p, sec, &u, errfd);
}
