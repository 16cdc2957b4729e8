/* libFuzzer harness: the compute document parsers -- the configuration
 * (hcs_compute_validate: parse, then compile the seccomp program as create
 * would), ProcessParameters (hcs_proc_spec_parse) and the command-line
 * splitter, all on the same input.  Nothing is created. */
#include <jansson.h>

#include "compute/compute.h"
#include "fuzz_util.h"
#include "hcs/compute.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fz_sandbox(false, 16);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = '\0';
  hcs_error_t err = NULL;
  hcs_compute_validate(text, &err);
  fz_report(NULL, err);
  hcs_error_release(&err);
  json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
  if (doc) {
    hcs_proc_spec_t *p = hcs_proc_spec_parse(doc, "ProcessParameters", &err);
    hcs_proc_spec_free(p);
    hcs_error_release(&err);
    json_decref(doc);
  }
  char **argv = hcs_split_command_line(text, &err);
  hcs_strv_free(argv);
  hcs_error_release(&err);
  free(text);
  return 0;
}
