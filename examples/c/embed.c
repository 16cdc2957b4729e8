/* Using libhcs from C, without Lua: print the host's capabilities.
 * Build against an installed hcs: cc embed.c $(pkg-config --cflags --libs hcs) */
#include <stdio.h>
#include <stdlib.h>

#include <hcs/hcs.h>

int main(void) {
  hcs_error_t err = NULL;
  char *caps = hcs_host_capabilities(&err);
  if (caps == NULL) {
    fprintf(stderr, "embed: %s\n", hcs_error_message(err));
    hcs_error_release(&err);
    return EXIT_FAILURE;
  }
  printf("libhcs %s on a %s cgroup host\n%s\n", hcs_version(), hcs_cgroup_mode_name(hcs_host_cgroup_mode()), caps);
  free(caps);
  return EXIT_SUCCESS;
}
