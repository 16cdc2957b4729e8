/* A static probe run inside containers by the specs: tries one system call
 * and prints `ok` or the errno name, so the seccomp profile is checked by
 * what the kernel answers, not by reading the filter.
 * usage: syscall_probe io_uring_setup | vsock | alg | inet | personality HEX | unshare-user */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

static int report(long r) {
  if (r >= 0) {
    printf("ok\n");
    return 0;
  }
  const char *name = errno == EPERM ? "EPERM" : errno == ENOSYS ? "ENOSYS" : errno == EINVAL ? "EINVAL" : NULL;
  if (name)
    printf("%s\n", name);
  else
    printf("errno %d\n", errno);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *what = argv[1];
  if (strcmp(what, "io_uring_setup") == 0) {
    char params[120];
    memset(params, 0, sizeof params);
    return report(syscall(__NR_io_uring_setup, 1, params));
  }
  if (strcmp(what, "vsock") == 0) return report(socket(AF_VSOCK, SOCK_STREAM, 0));
  if (strcmp(what, "alg") == 0) return report(socket(AF_ALG, SOCK_SEQPACKET, 0));
  if (strcmp(what, "inet") == 0) return report(socket(AF_INET, SOCK_DGRAM, 0));
  if (strcmp(what, "personality") == 0 && argc == 3)
    return report(syscall(SYS_personality, strtoul(argv[2], NULL, 16)));
  if (strcmp(what, "unshare-user") == 0) return report(unshare(CLONE_NEWUSER));
  return 2;
}
