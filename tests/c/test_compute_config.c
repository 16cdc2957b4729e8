/* Compute configuration validation: each bad document is rejected with the
 * JSON path, what was expected and what was found; good ones pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compute/compute.h"
#include "tap.h"

static char rootfs[] = "/tmp/hcs-test.XXXXXX";

/* The documents name the rootfs as %s: substitute it (no printf with a
 * non-literal format). */
static void subst(char *buf, size_t size, const char *doc) {
  const char *p = strstr(doc, "%s");
  if (p == NULL) {
    snprintf(buf, size, "%s", doc);
    return;
  }
  snprintf(buf, size, "%.*s%s%s", (int)(p - doc), doc, rootfs, p + 2);
}

static void reject(const char *doc, const char *want, const char *what) {
  hcs_error_t err = NULL;
  char buf[4096];
  subst(buf, sizeof buf, doc);
  int r = hcs_compute_validate(buf, &err);
  ok(r < 0, "rejects %s", what);
  has_substr(hcs_error_message(err), want, "message for %s", what);
  hcs_error_release(&err);
}

static void accept(const char *doc, const char *what) {
  hcs_error_t err = NULL;
  char buf[4096];
  subst(buf, sizeof buf, doc);
  int r = hcs_compute_validate(buf, &err);
  ok(r == 0, "accepts %s", what);
  if (r < 0) printf("#   %s\n", hcs_error_message(err));
  hcs_error_release(&err);
}

#define C(body) "{\"Container\":{\"Storage\":{\"Path\":\"%s\"}" body "}}"
#define L(body) "{\"Container\":{\"Storage\":{\"Path\":\"%s\"}},\"Linux\":{" body "}}"

int main(void) {
  if (mkdtemp(rootfs) == NULL) return 1;

  accept(C(""), "the minimal document");
  accept(
      "{\"Owner\":\"me\",\"SchemaVersion\":{\"Major\":2,\"Minor\":1},\"Container\":{\"GuestOs\":{\"HostName\":\"h\"},"
      "\"Storage\":{\"Path\":\"%s\",\"Layers\":[{\"Id\":\"a\",\"Path\":\"/x\"}]},\"Processor\":{\"Count\":1,"
      "\"Maximum\":5000,\"Weight\":100},\"Memory\":{\"SizeInMB\":64}},\"Linux\":{\"CgroupParent\":\"hcs-test\","
      "\"Capabilities\":[\"CAP_CHOWN\",\"CAP_KILL\"],\"Seccomp\":{\"Deny\":[\"chmod\"]},\"Rlimits\":[{\"Type\":"
      "\"RLIMIT_NOFILE\",\"Soft\":1024,\"Hard\":2048}],\"Sysctl\":{\"net.ipv4.ip_forward\":\"1\"},\"Devices\":"
      "[{\"Allow\":true,\"Type\":\"c\",\"Major\":10,\"Minor\":200,\"Access\":\"rw\"}],\"UidMappings\":[{"
      "\"ContainerId\":0,\"HostId\":100000,\"Size\":65536}],\"GidMappings\":[{\"ContainerId\":0,\"HostId\":100000,"
      "\"Size\":65536}],\"Init\":{\"CommandLine\":\"/bin/sh -c 'echo \\\"hi there\\\"'\"}}}",
      "a full document");

  reject("[]", "`(document)`: expected object, got array", "a non-object document");
  reject("{\"Owner\":\"x\"}", "`Container`: expected object, missing", "a missing Container");
  reject("{\"Container\":{}}", "`Container.Storage`: expected object, missing", "a missing Storage");
  reject("{\"Container\":{\"Storage\":{\"Path\":\"rel/path\"}}}",
         "`Container.Storage.Path`: expected an absolute path, got string \"rel/path\"", "a relative rootfs path");
  reject("{\"Container\":{\"Storage\":{\"Path\":\"/nonexistent/hcs\"}}}",
         "`Container.Storage.Path`: `/nonexistent/hcs`", "a missing rootfs");
  reject(C(",\"Memory\":{\"SizeInMB\":\"lots\"}"), "`Container.Memory.SizeInMB`: expected integer, got string \"lots\"",
         "a string memory size");
  reject(C(",\"Memory\":{\"SizeInMB\":1}"), "`Container.Memory.SizeInMB`: expected an integer in [4,",
         "a tiny memory size");
  reject(C(",\"Processor\":{\"Maximum\":20000}"),
         "`Container.Processor.Maximum`: expected an integer in [1, 10000], got 20000", "a processor maximum too big");
  reject(C(",\"Processor\":{\"Count\":100000}"), "`Container.Processor.Count`: expected an integer in [1,",
         "more processors than the host");
  reject(C(",\"Memory\":{\"SizeInMb\":64}"), "`Container.Memory.SizeInMb`: unknown field (expected one of SizeInMB)",
         "a misspelt field");
  reject("{\"Containr\":{}}", "`Containr`: unknown field", "a misspelt top-level field");
  reject(C(",\"MappedDirectories\":[{\"HostPath\":\"/tmp\",\"ContainerPath\":\"mnt\"}]"),
         "`Container.MappedDirectories[0].ContainerPath`: expected an absolute path, got string \"mnt\"",
         "a relative container path");
  reject(C(",\"MappedDirectories\":[{\"HostPath\":\"/nonexistent/x\",\"ContainerPath\":\"/mnt\"}]"),
         "`Container.MappedDirectories[0].HostPath`: `/nonexistent/x`: No such file or directory",
         "a missing host path");
  reject(C(",\"MappedDirectories\":{}"), "`Container.MappedDirectories`: expected array, got object",
         "mapped directories as an object");
  reject(C(",\"Networking\":{\"Namespace\":\"../x\"}"),
         "`Container.Networking.Namespace`: expected an absolute path or a namespace id", "a bad namespace id");
  reject(C(",\"Networking\":{\"Namespace\":\"/nonexistent/ns\"}"),
         "`Container.Networking.Namespace`: `/nonexistent/ns`", "a missing namespace path");
  reject(C(",\"GuestOs\":{\"HostName\":\"\"}"), "`Container.GuestOs.HostName`: expected 1..64 characters",
         "an empty hostname");
  reject("{\"SchemaVersion\":{\"Major\":1},\"Container\":{}}",
         "`SchemaVersion.Major`: expected an integer in [2, 2], got 1", "schema version 1");
  reject(L("\"Capabilities\":[\"CAP_FLY\"]"),
         "`Linux.Capabilities[0]`: expected a capability name (e.g. \"CAP_CHOWN\"), got string \"CAP_FLY\"",
         "an unknown capability");
  reject(L("\"Seccomp\":{\"Deny\":[\"no_such_syscall\"]}"),
         "`Linux.Seccomp.Deny[0]`: unknown syscall `no_such_syscall`", "an unknown syscall");
  reject(L("\"Rlimits\":[{\"Type\":\"RLIMIT_FOO\",\"Soft\":1,\"Hard\":1}]"),
         "`Linux.Rlimits[0].Type`: expected an RLIMIT_* name, got string \"RLIMIT_FOO\"", "an unknown rlimit");
  reject(L("\"Rlimits\":[{\"Type\":\"NOFILE\",\"Soft\":10,\"Hard\":1}]"),
         "`Linux.Rlimits[0]`: Soft (10) exceeds Hard (1)", "soft above hard");
  reject(L("\"Sysctl\":{\"kernel.panic\":\"1\"}"), "`Linux.Sysctl.kernel.panic`: expected a namespaced sysctl",
         "a host-wide sysctl");
  reject(L("\"Devices\":[{\"Type\":\"x\"}]"),
         "`Linux.Devices[0].Type`: expected \"a\", \"b\" or \"c\", got string \"x\"", "a bad device type");
  reject(L("\"UidMappings\":[{\"ContainerId\":0,\"HostId\":1000,\"Size\":1}]"),
         "`Linux.GidMappings`: expected together with UidMappings, missing", "uid maps without gid maps");
  reject(L("\"CgroupParent\":\"/abs\""), "`Linux.CgroupParent`: expected a relative cgroup path",
         "an absolute cgroup parent");
  reject(L("\"CgroupParent\":\"a/../b\""), "`Linux.CgroupParent`: expected a relative cgroup path",
         "a cgroup parent with ..");
  reject(L("\"ExitCommand\":[\"hcs\",\"rm\"]"), "`Linux.ExitCommand`: expected a non-empty array whose first element",
         "a relative exit command");
  reject(L("\"ExitCommand\":[]"), "`Linux.ExitCommand`: expected a non-empty array", "an empty exit command");
  reject(L("\"ExitCommand\":[\"/bin/true\",1]"), "`Linux.ExitCommand[1]`: expected string", "a non-string argument");
  accept(L("\"ExitCommand\":[\"/bin/true\",\"x\"]"), "an exit command");
  reject(L("\"Init\":{}"), "`Linux.Init.CommandArgs`: expected a non-empty command, missing",
         "an init without command");
  reject(L("\"Init\":{\"CommandLine\":\"a\",\"CommandArgs\":[\"a\"]}"), "give CommandLine or CommandArgs, not both",
         "both command forms");
  reject(L("\"Init\":{\"CommandLine\":\"sh -c 'unterminated\"}"), "unterminated quote", "an unterminated quote");
  reject(L("\"Init\":{\"CommandArgs\":[\"a\",1]}"), "`Linux.Init.CommandArgs[1]`: expected string, got integer 1",
         "a non-string argument");
  /* Container-side paths: absolute, no `.` or `..` component, each
   * rejection naming the element. */
  reject(L("\"MaskedPaths\":[\"/proc/kcore\",\"proc/keys\"]"),
         "`Linux.MaskedPaths[1]`: expected an absolute path, got string \"proc/keys\"", "a relative masked path");
  reject(L("\"MaskedPaths\":[\"/proc/../etc/shadow\"]"),
         "`Linux.MaskedPaths[0]`: expected an absolute path without `.` or `..` components", "a masked path with ..");
  reject(L("\"ReadonlyPaths\":[\"/proc/sys\",\"/etc/..\"]"),
         "`Linux.ReadonlyPaths[1]`: expected an absolute path without `.` or `..` components",
         "a read-only path ending in ..");
  reject(L("\"ReadonlyPaths\":[\"sys\"]"), "`Linux.ReadonlyPaths[0]`: expected an absolute path",
         "a relative read-only path");
  reject(L("\"ReadonlyPaths\":[\"/a/./b\"]"), "`Linux.ReadonlyPaths[0]`: expected an absolute path without",
         "a read-only path with .");
  reject(C(",\"MappedDirectories\":[{\"HostPath\":\"/tmp\",\"ContainerPath\":\"/mnt/..\"}]"),
         "`Container.MappedDirectories[0].ContainerPath`: expected an absolute path without `.` or `..` components",
         "a container path ending in ..");
  reject(C(",\"MappedDirectories\":[{\"HostPath\":\"/tmp\",\"ContainerPath\":\"//\"}]"),
         "`Container.MappedDirectories[0].ContainerPath`: expected a path below /", "the container root itself");
  reject(L("\"Init\":{\"CommandArgs\":[\"a\"],\"WorkingDirectory\":\"/srv/../../etc\"}"),
         "`Linux.Init.WorkingDirectory`: expected an absolute path without `.` or `..` components",
         "a working directory with ..");
  accept(L("\"MaskedPaths\":[\"/proc/kcore\",\"/a/.hidden/..x\"],\"ReadonlyPaths\":[]"), "paths with dots in names");
  reject(L("\"Init\":{\"CommandArgs\":[\"a\"],\"WorkingDirectory\":\"tmp\"}"),
         "`Linux.Init.WorkingDirectory`: expected an absolute path, got string \"tmp\"",
         "a relative working directory");
  reject(L("\"Init\":{\"CommandArgs\":[\"a\"],\"Environment\":{\"A\":1}}"),
         "`Linux.Init.Environment.A`: expected string, got integer 1", "a non-string environment value");
  reject(L("\"Init\":{\"CommandArgs\":[\"a\"],\"ConsoleSize\":[1]}"),
         "`Linux.Init.ConsoleSize`: expected [rows, columns]", "a bad console size");
  reject("not json", "configuration", "text that is not JSON");

  /* The fields hcs-runtime (docs/runtime.md) translates OCI documents to. */
  accept(L("\"Mounts\":[{\"Destination\":\"/run\",\"Type\":\"tmpfs\",\"Source\":\"tmpfs\",\"Options\":[\"nosuid\","
           "\"size=1m\",\"rprivate\"]},{\"Destination\":\"/d\",\"Source\":\"/tmp\",\"Options\":[\"rbind\",\"ro\"]}],"
           "\"ReadonlyRootfs\":true,\"CallerReapsInit\":true"),
         "Linux.Mounts, ReadonlyRootfs and CallerReapsInit");
  reject(L("\"Mounts\":[{\"Destination\":\"run\",\"Type\":\"tmpfs\"}]"),
         "`Linux.Mounts[0].Destination`: expected an absolute path below /", "a relative mount destination");
  reject(L("\"Mounts\":[{\"Destination\":\"/d\",\"Source\":\"/nonexistent\",\"Options\":[\"bind\"]}]"),
         "`Linux.Mounts[0].Source`: `/nonexistent`", "a bind source that does not exist");
  reject(L("\"Mounts\":[{\"Destination\":\"/d\"}]"), "`Linux.Mounts[0].Type`: expected a file system type",
         "a mount with no type");
  reject(L("\"Mounts\":[{\"Destination\":\"/d\",\"Type\":\"tmpfs\",\"Options\":[\"a,b\"]}]"),
         "`Linux.Mounts[0].Options[0]`: invalid mount option", "an option with a comma");
  reject(L("\"Seccomp\":{\"ProgramFile\":\"/nonexistent.bpf\"}"), "`Linux.Seccomp.ProgramFile`: `/nonexistent.bpf`",
         "a missing seccomp program");
  reject(L("\"Seccomp\":{\"ProgramFile\":\"/tmp\"}"), "is not a BPF program", "a seccomp program that is a directory");
  accept(L("\"CapabilitySets\":{\"Effective\":[\"CAP_KILL\"],\"Permitted\":[\"CAP_KILL\"],\"Inheritable\":"
           "[\"CAP_KILL\"],\"Ambient\":[\"CAP_KILL\"]}"),
         "Linux.CapabilitySets");
  reject(L("\"CapabilitySets\":{\"Ambient\":[\"CAP_KILL\"]}"),
         "`Linux.CapabilitySets.Ambient`: each ambient capability must also be Permitted and Inheritable",
         "an ambient capability that is not permitted");
  reject(L("\"CapabilitySets\":{\"Bounding\":[]}"), "`Linux.CapabilitySets.Bounding`: unknown field",
         "an unknown capability set");
  accept(L("\"Init\":{\"CommandArgs\":[\"a\"],\"Umask\":63,\"AdditionalGroups\":[5,7]}"), "Umask and AdditionalGroups");
  reject(L("\"Init\":{\"CommandArgs\":[\"a\"],\"Umask\":512}"), "`Linux.Init.Umask`: expected an integer in [0, 511]",
         "a umask out of range");
  reject(L("\"Init\":{\"CommandArgs\":[\"a\"],\"AdditionalGroups\":[-1]}"),
         "`Linux.Init.AdditionalGroups[0]`: expected a group id", "a negative group id");

  /* The command-line splitter: quotes and escapes, no expansion. */
  hcs_error_t err = NULL;
  char **argv = hcs_split_command_line("sh -c 'echo $HOME' \"a \\\"b\\\"\" c\\ d", &err);
  ok(argv != NULL, "splits a command line");
  if (argv) {
    is_str(argv[0], "sh", "word 0");
    is_str(argv[2], "echo $HOME", "single quotes are literal");
    is_str(argv[3], "a \"b\"", "double quotes with escapes");
    is_str(argv[4], "c d", "backslash escapes a space");
    ok(argv[5] == NULL, "five words");
    hcs_strv_free(argv);
  }
  rmdir(rootfs);
  return tap_done();
}
