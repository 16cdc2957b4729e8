/* hcs-monitor: the per-system monitor once init runs.  The monitor forked
 * by the creator spawns init, then execs this program with init's pid (or
 * pidfd), the log FIFOs and where to record the exit (watch.c builds the
 * command line).  A VM's monitor execs it as `hcs-monitor --vm ...` once
 * QEMU runs, with QEMU's pid and the agent relay's sockets (src/vm/watch.c).
 * Linked statically with only what the watches need, so an idle system
 * costs a few private pages here rather than a fork of a process that
 * loaded the Lua host and its libraries.  Not for humans: started by
 * libhcs only. */
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <string.h>

#include "vm/vm.h"

/* The kernel maps a file's cached pages around each fault (64 kB at a
 * time), so start-up and the first steps of the watch (printf, strftime)
 * leave most of our text and read-only data mapped: ~0.6 MB counted in
 * our RSS for a process that then sleeps in one system call.  Once it
 * sleeps, unmapping the read-only segments (never written, so nothing is
 * lost: a later fault maps the page cache's copy again) leaves resident
 * only the pages of the loop it sleeps in.  The RELRO range is kept: its
 * GOT was written at start-up (IRELATIVE), and dropping it would revert it
 * to the file's contents.  The ranges are found at start-up; the drop runs
 * from SIGALRM a second later, when the watch sleeps in poll or waitpid
 * (both retried on EINTR), and does nothing but madvise. */
enum { MAX_RANGES = 8, DROP_AFTER_S = 1 };
static struct { uintptr_t lo, hi; } ranges[MAX_RANGES];
static int n_ranges;

static int find_read_only(struct dl_phdr_info *info, size_t size, void *data) {
  uintptr_t relro_lo = 0, relro_hi = 0, page = 4096;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_GNU_RELRO) relro_lo = info->dlpi_addr + ph->p_vaddr, relro_hi = relro_lo + ph->p_memsz;
  }
  for (int i = 0; i < info->dlpi_phnum && n_ranges < MAX_RANGES; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W)) continue;
    uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
    uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
    if (relro_hi > lo && relro_lo < hi) {
      if (relro_lo <= lo) continue;
      hi = relro_lo & ~(page - 1);
    }
    ranges[n_ranges].lo = lo, ranges[n_ranges].hi = hi, n_ranges++;
  }
  return 1; /* the executable only (a dynamic build: not the libraries) */
}

static void drop_read_only(int sig) {
  int saved = errno;
  for (int i = 0; i < n_ranges; i++)
    madvise((void *)ranges[i].lo, ranges[i].hi - ranges[i].lo, MADV_DONTNEED);
  errno = saved;
}

static void drop_read_only_now(void) { drop_read_only(0); }

/* A VM's monitor: its command line must name this process's own VM.  The
 * watch drops the read-only pages itself each time it turns idle (the
 * relay's code runs whenever a caller or the guest agent speaks). */
static int vm_main(int argc, char **argv) {
  prctl(PR_SET_NAME, "hcs-vm-monitor", 0, 0, 0);
  hcs_vm_watch_t w;
  hcs_error_t err = NULL;
  if (hcs_vm_watch_parse(argc, argv, &w, &err) < 0 || hcs_vm_watch_check(&w, &err) < 0) {
    /* Nothing was touched: the VM (if any) runs on without a monitor,
     * which the next command finds as after a killed monitor. */
    fprintf(stderr, "hcs-monitor: %s\n", hcs_error_message(err));
    hcs_error_release(&err);
    return 2;
  }
  dl_iterate_phdr(find_read_only, NULL);
  w.on_idle = drop_read_only_now;
  hcs_vm_watch_run(&w);
}

int main(int argc, char **argv) {
  /* Reset by execve: nothing may open our /proc/PID/mem (the creator's
   * fork was non-dumpable too). */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  if (argc > 1 && strcmp(argv[1], "--vm") == 0) return vm_main(argc, argv);
  hcs_watch_t w;
  hcs_error_t err = NULL;
  if (hcs_watch_parse(argc, argv, &w, &err) < 0) {
    /* Run by hand, or by a libhcs of another version.  Whoever started us
     * is left with a system whose monitor is gone: the next command cleans
     * it up as it does after a killed monitor. */
    fprintf(stderr, "hcs-monitor: %s\n", hcs_error_message(err));
    hcs_error_release(&err);
    return 2;
  }
  dl_iterate_phdr(find_read_only, NULL);
  /* Cancelled by the watch before it execs the exit command. */
  struct sigaction sa = {.sa_handler = drop_read_only};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  alarm(DROP_AFTER_S);
  hcs_watch_run(&w);
}
