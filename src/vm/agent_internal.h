/* What agent_client.c (framing, relay thread, requests, connection) and
 * agent_process.c (processes and the small requests) share: the session and
 * process structures and the few calls between the two files. */
#ifndef HCS_VM_AGENT_INTERNAL_H
#define HCS_VM_AGENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm/agent_client.h"

struct pend {
  unsigned char *d;
  size_t off, len;
};

struct hcs_vm_agent_process_s {
  struct hcs_vm_agent_process_s *next;
  hcs_vm_agent_t *a;
  uint32_t id;
  int pid;
  bool tty;
  int relay_in;     /* the relay reads stdin here (-1 done) */
  int relay_out[3]; /* [1], [2]: the relay writes stdout/stderr here (-1 done) */
  int user[3];      /* the caller's ends until taken */
  struct pend pend[3];
  bool eof[3];            /* the guest closed the stream: close relay_out once pend is written */
  uint32_t in_credit;     /* stdin bytes the guest lets us send */
  uint32_t out_credit[3]; /* [1], [2]: bytes the guest may still send; more is a protocol violation */
  bool exited, released;
  int code, signal;
  int done[3]; /* [1], [2]: EOF once the copier to the caller's own fd finished */
  int stop;    /* eventfd: tells the stdin copier the process is gone */
  int exitfd;  /* eventfd: readable once the process exited or the agent is gone (poll loops) */
};

struct waiter {
  struct waiter *next;
  int64_t seq;
  json_t *reply;
  hcs_vm_agent_process_t *proc; /* a create: registered by the relay with the reply */
};

struct hcs_vm_agent_s {
  int sock, wake;
  pthread_t thread;
  bool thread_started;
  pthread_mutex_t mu, wmu;
  pthread_cond_t cv;
  bool gone, stopping;
  char *gone_why;
  int64_t seq;
  struct waiter *waiters;
  hcs_vm_agent_process_t *procs;
  unsigned char *in; /* bytes read, not yet a whole frame */
  size_t in_len, in_cap;
};

/* Wake the relay thread (its poll set changed). */
void agent_wake(hcs_vm_agent_t *a);
/* The error of a session whose connection is gone. */
int agent_gone_error(hcs_vm_agent_t *a, hcs_error_t *err);
/* Close a process's relay ends and copiers and free it (a->mu held or unreachable). */
void agent_proc_free(hcs_vm_agent_process_t *p);
/* Send req (stolen) and wait for its reply; proc: a create, registered by the relay with the reply. */
json_t *agent_request(hcs_vm_agent_t *a, json_t *req, hcs_vm_agent_process_t *proc, hcs_error_t *err);

#endif
