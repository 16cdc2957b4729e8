/* ptyrun: run a command on a new pseudo-terminal, type the given input into
 * it line by line, and copy everything the command prints to stdout.
 * Used by the specs to drive the REPL as a person would.
 *   ptyrun [-t SECONDS] [-s ROWSxCOLS] INPUT -- command args...
 * INPUT is typed with "\n", "\t", "\c" (Ctrl-C), "\p" and "\q" (Ctrl-P, Ctrl-Q) escapes honoured, and two
 * actions: "\o" waits for the command to print something, "\w" resizes
 * the terminal (10 rows and 20 columns more: the command gets SIGWINCH);
 * after it, Ctrl-D.  "\eTEXT\e" waits until TEXT has been printed.  -s sets
 * the terminal's size at the start. */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Everything printed so far, for "\\e" (expect). */
static char seen[1 << 16];
static size_t seen_len;

static void output(const char *buf, size_t n) {
  fwrite(buf, 1, n, stdout);
  if (n > sizeof seen - 1 - seen_len) seen_len = 0; /* keep the newest */
  if (n < sizeof seen - 1) memcpy(seen + seen_len, buf, n), seen_len += n;
  seen[seen_len] = '\0';
}

/* Copy output for up to `secs`, or until the child closes the pty. */
static int pump(int master, double secs) {
  double end = now() + secs;
  char buf[4096];
  while (now() < end) {
    struct pollfd p = {.fd = master, .events = POLLIN};
    int r = poll(&p, 1, 50);
    if (r <= 0) continue;
    ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) return -1;
    output(buf, (size_t)n);
  }
  return 0;
}

/* Copy output until something was printed (or `secs` passed). */
static void pump_until_output(int master, double secs) {
  double end = now() + secs;
  char buf[4096];
  while (now() < end) {
    struct pollfd p = {.fd = master, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) return;
    output(buf, (size_t)n);
    return;
  }
}

int main(int argc, char **argv) {
  double timeout = 10;
  struct winsize ws = {.ws_row = 24, .ws_col = 80};
  struct winsize *wsp = NULL;
  int i = 1;
  for (;;) {
    if (argc > i + 1 && strcmp(argv[i], "-t") == 0) {
      timeout = atof(argv[i + 1]);
      i += 2;
    } else if (argc > i + 1 && strcmp(argv[i], "-s") == 0) {
      unsigned r, c;
      if (sscanf(argv[i + 1], "%ux%u", &r, &c) == 2) ws.ws_row = (unsigned short)r, ws.ws_col = (unsigned short)c;
      wsp = &ws;
      i += 2;
    } else {
      break;
    }
  }
  if (argc < i + 3 || strcmp(argv[i + 1], "--") != 0) {
    fprintf(stderr, "usage: ptyrun [-t SECONDS] INPUT -- command args...\n");
    return 2;
  }
  const char *input = argv[i];
  int master;
  pid_t pid = forkpty(&master, NULL, NULL, wsp);
  if (pid < 0) {
    perror("forkpty");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[i + 2], argv + i + 2);
    perror("exec");
    _exit(127);
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  pump(master, 0.5); /* let the program print its banner and prompt */
  for (const char *p = input; *p; p++) {
    char c = *p;
    if (c == '\\' && p[1] == 'n')
      c = '\n', p++;
    else if (c == '\\' && p[1] == 't')
      c = '\t', p++;
    else if (c == '\\' && p[1] == 'c')
      c = 3, p++; /* Ctrl-C: the line discipline sends SIGINT */
    else if (c == '\\' && p[1] == 'p')
      c = 0x10, p++; /* Ctrl-P and Ctrl-Q: the default detach keys of attach */
    else if (c == '\\' && p[1] == 'q')
      c = 0x11, p++;
    else if (c == '\\' && p[1] == 'o') {
      p++;
      pump_until_output(master, timeout);
      continue;
    } else if (c == '\\' && p[1] == 'e') {
      /* "\\eTEXT\\e": wait until TEXT has been printed (since the start). */
      const char *start = p + 2, *stop = strstr(start, "\\e");
      if (stop == NULL) break;
      char want[256];
      snprintf(want, sizeof want, "%.*s", (int)(stop - start), start);
      double end = now() + timeout;
      while (strstr(seen, want) == NULL && now() < end)
        pump_until_output(master, end - now());
      p = stop + 1;
      continue;
    } else if (c == '\\' && p[1] == 'w') {
      p++;
      ws.ws_row += 10, ws.ws_col += 20;
      ioctl(master, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH to the foreground group */
      pump(master, 0.3);
      continue;
    }
    if (write(master, &c, 1) != 1) break;
    if (c == '\n' || c == '\t' || c == 3 || c == 0x11) pump(master, 0.3);
  }
  char eot = 4;
  if (write(master, &eot, 1) != 1) { /* the program may be gone already */
  }
  double end = now() + timeout;
  int status = 0;
  bool open = true;
  while (now() < end) {
    if (open && pump(master, 0.05) < 0) open = false; /* the pty closed: the program is exiting */
    if (!open) usleep(10000);
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (open) pump(master, 0.05);
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  fprintf(stderr, "ptyrun: timed out\n");
  return 124;
}
