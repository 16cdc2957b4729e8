/* Virtual machine compute systems under TCG (label `vm`): a Debian kernel
 * and a busybox initramfs (tests/tools/vm-initrd.sh) whose init writes to
 * the serial console.  Bad documents; boot to the console marker; pause
 * stops the guest's counter and resume continues it; save, delete and
 * restore continue the counter; QEMU killed with SIGKILL ends Stopped with
 * ExitType Killed; data written to a disk in one boot is read in the next;
 * the ACPI power button shuts the guest down; nothing is left behind.  Few
 * boots: CI has 2 cores for every VM test. */
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "hcs/vm_initrd.h"
#include "vm/agent_client.h"
#include "vm/vm.h"
#include "hcs/hcs.h"
#include "tap.h"
#include "vm_test.h"

static char initrd[PATH_MAX];

/* The first and the last "tick N" on the console after byte `from`, -1
 * if none (lines end in CRLF: the guest's tty). */
static long tick_after(const char *path, size_t from, bool first) {
  cleanup_free char *s = slurp(path);
  long n = -1;
  if (strlen(s) < from) return -1;
  for (char *p = s + from; (p = strstr(p, "tick ")); p += 5) {
    n = strtol(p + 5, NULL, 10);
    if (first) break;
  }
  return n;
}
static long last_tick(const char *path) { return tick_after(path, 0, false); }

/* Wait until the guest has counted to n (after byte `from`). */
static bool wait_tick(const char *path, long n, size_t from) {
  for (int i = 0; i < 1800; i++) {
    if (tick_after(path, from, false) >= n) return true;
    usleep(100 * 1000);
  }
  return false;
}

static char *vm_doc(const char *mode, const char *console, const char *disk, const char *extra) {
  cleanup_free char *devices = disk
                                   ? hcs_xasprintf(",\"Scsi\":{\"0\":{\"Attachments\":{\"0\":{\"Type\":\"VirtualDisk\","
                                                   "\"Path\":\"%s\"}}}}",
                                                   disk)
                                   : hcs_xstrdup("");
  return hcs_xasprintf(
      "{\"Owner\":\"vmtest\",\"SchemaVersion\":{\"Major\":2,\"Minor\":1},\"VirtualMachine\":{"
      "\"StopOnReset\":true,\"ComputeTopology\":{\"Memory\":{\"SizeInMB\":192},\"Processor\":{\"Count\":1}},"
      "\"Chipset\":{\"LinuxKernelDirect\":{\"KernelFilePath\":\"%s\",\"InitRdPath\":\"%s\","
      "\"KernelCmdLine\":\"console=ttyS0 quiet panic=-1 hcs.mode=%s\"}},"
      "\"Devices\":{\"ComPorts\":{\"0\":{\"Path\":\"%s\"}}%s%s%s}},"
      "\"Linux\":{\"CgroupParent\":\"%s\"}}",
      kernel, initrd, mode, console, devices, extra ? "," : "", extra ? extra : "", cgparent);
}

static void bad_documents(void) {
  hcs_error_t e = NULL;
  struct {
    const char *what, *find, *replace, *want;
  } cases[] = {
      {"a missing kernel", kernel, "/nonexistent/vmlinuz",
       "`VirtualMachine.Chipset.LinuxKernelDirect.KernelFilePath`: `/nonexistent/vmlinuz` not found"},
      {"memory 0", "\"SizeInMB\":192", "\"SizeInMB\":0",
       "`VirtualMachine.ComputeTopology.Memory.SizeInMB`: expected an integer in [16, 1048576], got 0"},
      {"an unknown field", "\"StopOnReset\"", "\"StopOnReboot\"", "`VirtualMachine.StopOnReboot`: unknown field"},
      {"a disk not found", NULL, NULL,
       "`VirtualMachine.Devices.Scsi.0.Attachments.0.Path`: `/nonexistent/disk.img` not found"},
      {"no kernel", "\"KernelFilePath\"", "\"KernelFilePat\"",
       "`VirtualMachine.Chipset.LinuxKernelDirect.KernelFilePat`: unknown field"},
      {"Container and VirtualMachine", "\"Owner\"", "\"Container\":{},\"Owner\"", "`Container`: unknown field"},
  };
  for (size_t i = 0; i < HCS_ARRAY_SIZE(cases); i++) {
    cleanup_free char *doc = vm_doc("idle", "/tmp/x", cases[i].find ? NULL : "/nonexistent/disk.img", NULL);
    if (cases[i].find) {
      char *at = strstr(doc, cases[i].find);
      char *nd = hcs_xasprintf("%.*s%s%s", (int)(at - doc), doc, cases[i].replace, at + strlen(cases[i].find));
      free(doc);
      doc = nd;
    }
    hcs_system_t *cs = hcs_compute_create(root, "bad", doc, NULL, &e);
    ok(cs == NULL, "create refuses %s", cases[i].what);
    has_substr(hcs_error_message(e), cases[i].want, "... saying %s", cases[i].want);
    hcs_error_release(&e);
    hcs_compute_close(cs);
  }
  cleanup_free char *list = hcs_compute_enumerate(root, NULL, &e);
  is_str(list, "[]", "nothing was made by the refused documents");
}

/* A Plan9 share request of hcs_compute_modify. */
/* The balloon, and hot-plug of a disk and a Plan9 share (added, recorded
 * in config.json, removed once the guest let go). */
static void modify_checks(hcs_system_t *cs) {
  hcs_error_t e = NULL;
  ok(hcs_compute_modify(cs, "{\"Memory\":{\"SizeInMB\":128}}", &e) == 0, "modify: balloon to 128 MB: %s",
     e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  long long actual = 0;
  for (int i = 0; i < 600 && actual != 128LL << 20; i++) {
    json_t *p = props(cs);
    actual = json_integer_value(json_object_get(json_object_get(p, "VirtualMachine"), "BalloonBytes"));
    json_decref(p);
    if (actual != 128LL << 20) usleep(100 * 1000);
  }
  is_int(actual, 128LL << 20, "the guest gave the memory back (BalloonBytes)");
  ok(hcs_compute_modify(cs, "{\"Memory\":{\"SizeInMB\":4096}}", &e) < 0, "a balloon above the VM's memory is refused");
  has_substr(hcs_error_message(e), "`Memory.SizeInMB`", "... naming the field");
  hcs_error_release(&e);
  cleanup_free char *disk = hcs_xasprintf("%s/hot.img", root);
  int fd = open(disk, O_CREAT | O_WRONLY, 0600);
  if (fd >= 0) close(fd);
  ok(truncate(disk, 1 << 20) == 0, "a disk to hot-add");
  cleanup_free char *add =
      hcs_xasprintf("{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/0/Attachments/1\","
                    "\"RequestType\":\"Add\",\"Settings\":{\"Type\":\"VirtualDisk\",\"Path\":\"%s\"}}",
                    disk);
  ok(hcs_compute_modify(cs, add, &e) == 0, "hot-add a disk: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/run/compute/%s/config.json", root, hcs_compute_id(cs));
  cleanup_free char *cfg = slurp(path);
  has_substr(cfg, disk, "config.json records the disk");
  ok(hcs_compute_modify(cs, add, &e) < 0, "adding it twice is refused");
  hcs_error_release(&e);
  ok(hcs_compute_modify(
         cs, "{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/0/Attachments/1\",\"RequestType\":\"Remove\"}", &e) == 0,
     "hot-remove it: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  cleanup_free char *cfg2 = slurp(path);
  ok(strstr(cfg2, disk) == NULL, "config.json forgets it");
  /* Plan9 shares at run time, in a guest without the agent: the bind is
   * made in QEMU's mount namespace only (the guest sees it under the
   * hcs-shares tag); bad requests are refused. */
  cleanup_free char *sdir = hcs_xasprintf("%s/hostshare", root);
  mkdir(sdir, 0755);
  struct {
    char *req;
    const char *want, *what;
  } bad[] = {
      {share_req("Add", "rel", "relative/dir", true), "`Settings.Path`: expected an absolute path", "a relative path"},
      {share_req("Add", "gone", "/nonexistent/share", true), "`Settings.Path`: `/nonexistent/share` not found",
       "a path not found"},
      {share_req("Add", "file", disk, true), "is not a directory", "a file"},
      {share_req("Add", "hcs-shares", sdir, true), "`Settings.Name`", "the export's own tag as a name"},
      {hcs_xasprintf("{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"RequestType\":\"Add\","
                     "\"Settings\":{\"Name\":\"x\",\"Path\":\"%s\",\"Flags\":1}}",
                     sdir),
       "`Settings.Flags`: unknown field", "an unknown field"},
      {share_req("Remove", "nosuch", NULL, false), "remove Plan9 share `nosuch`: no such share", "an unknown name"},
  };
  for (size_t i = 0; i < HCS_ARRAY_SIZE(bad); i++) {
    ok(hcs_compute_modify(cs, bad[i].req, &e) < 0, "a share add with %s is refused", bad[i].what);
    has_substr(hcs_error_message(e), bad[i].want, "... saying %s", bad[i].want);
    hcs_error_release(&e);
    free(bad[i].req);
  }
  pid_t q = qemu_pid(cs);
  cleanup_free char *share = share_req("Add", "hostshare", sdir, true);
  ok(hcs_compute_modify(cs, share, &e) == 0, "hot-add a Plan9 share: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  ok(mountinfo_has(q, "/shares/hostshare "), "its bind is in QEMU's mount namespace");
  ok(!mountinfo_has(0, "/shares/hostshare "), "... and not in the host's");
  cleanup_free char *cfg3 = slurp(path);
  has_substr(cfg3, "\"HotAdded\": true", "config.json records it as hot-added");
  ok(hcs_compute_modify(cs, share, &e) < 0, "adding the name again is refused");
  has_substr(hcs_error_message(e), "add Plan9 share `hostshare`: the name is in use", "... saying so");
  hcs_error_release(&e);
  cleanup_free char *tmp = share_req("Add", "tmpshare", sdir, false), *rm = share_req("Remove", "tmpshare", NULL, 0);
  ok(hcs_compute_modify(cs, tmp, &e) == 0 && mountinfo_has(q, "/shares/tmpshare "), "hot-add a second share: %s",
     e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  ok(hcs_compute_modify(cs, rm, &e) == 0, "remove it: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  ok(!mountinfo_has(q, "/shares/tmpshare "), "... its bind is gone from QEMU's namespace");
  cleanup_free char *cfg4 = slurp(path);
  ok(strstr(cfg4, "tmpshare") == NULL, "... and from config.json");
  ok(hcs_compute_modify(
         cs, "{\"ResourcePath\":\"VirtualMachine/Devices/Nope\",\"RequestType\":\"Add\",\"Settings\":{}}", &e) < 0,
     "an unknown resource path is refused");
  has_substr(hcs_error_message(e), "`ResourcePath`", "... naming the field");
  hcs_error_release(&e);
  ok(hcs_compute_modify(cs, add, &e) == 0, "hot-add the disk again (the save below carries it): %s",
     e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
}

/* The VM's monitor, once QEMU runs, is the small hcs-monitor program
 * ($HCS_MONITOR), not a fork of this test, and holds nothing of ours:
 * stdio, QEMU's pidfd, the relay's exec.sock and agent connection. */
static void monitor_is_program(hcs_system_t *cs, const char *what) {
  json_t *p = props(cs);
  pid_t mon = (pid_t)json_integer_value(json_object_get(p, "MonitorPid"));
  json_decref(p);
  char link[64], exe[PATH_MAX] = "", want[PATH_MAX] = "";
  snprintf(link, sizeof link, "/proc/%d/exe", (int)mon);
  ssize_t n = readlink(link, exe, sizeof exe - 1);
  if (n > 0) exe[n] = '\0';
  const char *program = getenv("HCS_MONITOR");
  ok(program && realpath(program, want) && strcmp(exe, want) == 0, "%s: its monitor is hcs-monitor (%s)", what, exe);
  snprintf(link, sizeof link, "/proc/%d/fd", (int)mon);
  int nfd = 0;
  DIR *d = opendir(link);
  for (struct dirent *e; d && (e = readdir(d));)
    nfd += e->d_name[0] != '.';
  if (d) closedir(d);
  is_int(nfd, 6, "%s: the monitor holds stdio, QEMU's pidfd and the relay's two sockets", what);
}

static void counter_pause_save_restore(void) {
  hcs_error_t e = NULL;
  cleanup_free char *con = hcs_xasprintf("%s/counter.log", root), *save = hcs_xasprintf("%s/vm.state", root);
  cleanup_free char *doc = vm_doc("counter", con, NULL, NULL);
  hcs_system_t *cs = hcs_compute_create(root, "counter", doc, NULL, &e);
  ok(cs != NULL, "create a VM: %s", cs ? "" : hcs_error_message(e));
  if (cs == NULL) return;
  json_t *p = props(cs);
  is_str(prop_str(p, "State"), "Created", "a new VM is Created");
  is_str(prop_str(p, "SystemType"), "VirtualMachine", "SystemType VirtualMachine");
  json_decref(p);
  cleanup_free char *list = hcs_compute_enumerate(root, NULL, &e);
  has_substr(list, "\"SystemType\":\"VirtualMachine\"", "enumerate lists it as a VM");
  ok(hcs_compute_start(cs, &e) == 0, "start");
  ok(wait_console(con, "HCS-VM-BOOTED mode=counter", 0), "the guest boots to its init (console marker)");
  ok(wait_tick(con, 2, 0), "the guest counts");
  monitor_is_program(cs, "a running VM");

  ok(hcs_compute_pause(cs, &e) == 0, "pause");
  p = props(cs);
  is_str(prop_str(p, "State"), "Paused", "Paused");
  is_str(json_string_value(json_object_get(json_object_get(p, "VirtualMachine"), "RunState")), "paused",
         "QEMU's run state is paused");
  json_decref(p);
  long before = last_tick(con);
  sleep(2);
  is_int(last_tick(con), before, "the counter stands still while paused");
  ok(hcs_compute_resume(cs, &e) == 0, "resume");
  ok(wait_tick(con, before + 2, 0), "the counter continues after resume");

  modify_checks(cs);

  ok(hcs_vm_save(cs, save, &e) == 0, "save: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  p = props(cs);
  is_str(prop_str(p, "State"), "Paused", "a saved VM stays Paused");
  json_decref(p);
  long saved = last_tick(con);
  struct stat st;
  ok(stat(save, &st) == 0 && st.st_size > 1024 * 1024, "the saved state is written");
  ok(hcs_compute_delete(cs, true, &e) == 0, "delete the saved VM");
  hcs_compute_close(cs);
  size_t mark = console_size(con);

  cs = hcs_vm_restore(root, "restored", save, &e);
  ok(cs != NULL, "restore into a new system: %s", cs ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  if (cs == NULL) return;
  p = props(cs);
  is_str(prop_str(p, "State"), "Created", "the restored system is Created");
  json_decref(p);
  char cfgp[PATH_MAX];
  snprintf(cfgp, sizeof cfgp, "%s/run/compute/restored/config.json", root);
  cleanup_free char *rcfg = slurp(cfgp);
  has_substr(rcfg, "hot.img", "the restored system has the hot-added disk");
  ok(mountinfo_has(qemu_pid(cs), "/shares/hostshare "), "... and the hot-added share's bind again");
  ok(hcs_compute_start(cs, &e) == 0, "start the restored system");
  ok(wait_tick(con, saved + 1, mark), "the restored guest counts");
  is_int(tick_after(con, mark, true), saved + 1, "... continuing where the saved one stopped");
  cleanup_free char *all = slurp(con);
  ok(strstr(all + mark, "HCS-VM-BOOTED") == NULL, "... without booting again");
  monitor_is_program(cs, "a restored VM");

  /* QEMU killed from outside: the monitor records it. */
  p = props(cs);
  pid_t qemu = (pid_t)json_integer_value(json_object_get(p, "Pid"));
  json_decref(p);
  ok(qemu > 0 && kill(qemu, SIGKILL) == 0, "SIGKILL QEMU");
  is_int(hcs_compute_wait(cs, 60000, &e), 1, "the system stops");
  p = props(cs);
  is_str(prop_str(p, "State"), "Stopped", "Stopped");
  is_str(prop_str(p, "ExitType"), "Killed", "ExitType Killed");
  is_int(json_integer_value(json_object_get(p, "ExitSignal")), 9, "ExitSignal 9");
  json_decref(p);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "/proc/%d", (int)qemu);
  ok(access(path, F_OK) < 0, "QEMU is gone");
  ok(hcs_compute_delete(cs, false, &e) == 0, "delete");
  hcs_compute_close(cs);
}

static void disk_and_shutdown(void) {
  hcs_error_t e = NULL;
  cleanup_free char *con = hcs_xasprintf("%s/disk.log", root), *disk = hcs_xasprintf("%s/data.img", root);
  int fd = open(disk, O_CREAT | O_WRONLY, 0600);
  ok(fd >= 0 && ftruncate(fd, 1 << 20) == 0, "a 1 MiB raw disk");
  close(fd);
  char token[32];
  snprintf(token, sizeof token, "t%ld", (long)time(NULL));
  cleanup_free char *mode = hcs_xasprintf("disk-write hcs.token=%s", token);
  cleanup_free char *doc = vm_doc(mode, con, disk, NULL);
  hcs_system_t *cs = hcs_compute_create(root, "disk1", doc, NULL, &e);
  ok(cs != NULL, "create a VM with a disk: %s", cs ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  if (cs == NULL) return;
  ok(hcs_compute_start(cs, &e) == 0, "start");
  ok(wait_console(con, "HCS-DISK-WRITTEN", 0), "the guest wrote its disk");
  ok(hcs_compute_shutdown(cs, 120000, &e) == 0, "shutdown");
  json_t *p = props(cs);
  is_str(prop_str(p, "ExitType"), "Shutdown", "ExitType Shutdown");
  is_int(json_integer_value(json_object_get(p, "ExitCode")), 0, "QEMU exited 0 (the guest powered off)");
  json_decref(p);
  ok(wait_console(con, "HCS-VM-POWERBUTTON", 0), "the guest saw the ACPI power button");
  hcs_compute_delete(cs, false, &e);
  hcs_compute_close(cs);

  size_t mark = console_size(con);
  /* This guest ignores the power button: shutdown terminates it once its
   * timeout passed. */
  doc = (free(doc), vm_doc("disk-read hcs.nopb=1", con, disk, NULL));
  cs = hcs_compute_create(root, "disk2", doc, NULL, &e);
  ok(cs != NULL && hcs_compute_start(cs, &e) == 0, "boot again with the same disk");
  cleanup_free char *want = hcs_xasprintf("HCS-DISK-READ HCSDATA:%s:END", token);
  ok(wait_console(con, want, mark), "the data written in the first boot is read in the second");
  if (cs) {
    ok(hcs_compute_shutdown(cs, 3000, &e) == 0, "shutdown of a guest that ignores the power button");
    json_t *q = props(cs);
    is_str(prop_str(q, "State"), "Stopped", "... stops it once the timeout passed");
    is_str(prop_str(q, "ExitType"), "Terminated", "ExitType Terminated");
    json_decref(q);
    hcs_compute_delete(cs, false, &e);
    hcs_compute_close(cs);
  }
  hcs_error_release(&e);
}

/* Hot-add of an adapter on a second endpoint: the guest sees a new link,
 * the tap is on the bridge; bad requests are refused; hot-remove takes the
 * link from the guest and the tap from the host. */
static void nic_hotplug(hcs_system_t *cs, const char *con, const char *tap2) {
  hcs_error_t e = NULL;
  static const char add_fmt[] = "{\"ResourcePath\":\"VirtualMachine/Devices/NetworkAdapters/%s\",\"RequestType\":"
                                "\"Add\",\"Settings\":{\"EndpointId\":\"%s\"}}";
  char req[512], cmd[128];
  size_t mark = console_size(con);
  snprintf(req, sizeof req, add_fmt, "nic1", "nope");
  ok(hcs_compute_modify(cs, req, &e) < 0, "hot-add on an unknown endpoint is refused");
  has_substr(hcs_error_message(e), "nope", "... naming it: %s", hcs_error_message(e));
  hcs_error_release(&e);
  snprintf(req, sizeof req, add_fmt, "nic1", "vmep");
  ok(hcs_compute_modify(cs, req, &e) < 0, "hot-add on the endpoint the VM already uses is refused");
  has_substr(hcs_error_message(e), "endpoint `vmep` is already attached to this VM (adapter `nic0`)",
             "... saying it is this VM's own: %s", hcs_error_message(e));
  hcs_error_release(&e);
  /* A network on an existing bridge (not made by hcs) that went away. */
  char br[16], l2[256];
  snprintf(br, sizeof br, "hcs-vb%d", (int)(getpid() % 100000));
  snprintf(cmd, sizeof cmd, "ip link add %s type bridge", br);
  ok(system(cmd) == 0, "a host bridge %s", br);
  hcs_net_t *net = hcs_net_open(root, &e);
  snprintf(l2, sizeof l2,
           "{\"Name\":\"vml2\",\"Type\":\"L2Bridge\",\"Policies\":[{\"Type\":\"NetAdapterName\",\"Settings\":{"
           "\"NetworkAdapterName\":\"%s\"}}]}",
           br);
  cleanup_free char *l2net = net ? hcs_net_network_create(net, l2, &e) : NULL;
  cleanup_free char *l2ep =
      l2net ? hcs_net_endpoint_create(net, "{\"Name\":\"vmep4\",\"HostComputeNetwork\":\"vml2\"}", &e) : NULL;
  ok(l2ep != NULL, "an L2Bridge network on it and an endpoint: %s", l2ep ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  snprintf(cmd, sizeof cmd, "ip link del %s", br);
  ok(system(cmd) == 0, "the bridge removed");
  snprintf(req, sizeof req, add_fmt, "nic2", "vmep4");
  ok(hcs_compute_modify(cs, req, &e) < 0, "hot-add on an endpoint whose network has no bridge is refused");
  cleanup_free char *want_br = hcs_xasprintf("its bridge `%s` (not made by hcs) is missing", br);
  has_substr(hcs_error_message(e), want_br, "... saying so: %s", hcs_error_message(e));
  has_substr(hcs_error_message(e), "network adapter `nic2`", "... naming the adapter");
  hcs_error_release(&e);
  char tap4[16] = "";
  json_t *l2j = json_loads(l2ep ? l2ep : "{}", 0, NULL);
  hcs_net_tap_name(json_string_value(json_object_get(l2j, "Id")) ?: "", tap4);
  json_decref(l2j);
  snprintf(cmd, sizeof cmd, "ip link show %s >/dev/null 2>&1", tap4);
  ok(system(cmd) != 0, "... and made no tap");
  snprintf(req, sizeof req, "%s/run/compute/%s/config.json", root, hcs_compute_id(cs));
  cleanup_free char *cfg = slurp(req);
  ok(strstr(cfg, "vmep4") == NULL, "... nor an adapter in config.json");
  if (net) {
    ok(hcs_net_endpoint_delete(net, "vmep4", &e) == 0 && hcs_net_network_delete(net, "vml2", true, &e) == 0,
       "remove the endpoint and the network: %s", e ? hcs_error_message(e) : "");
    hcs_error_release(&e);
    hcs_net_close(net);
  }
  snprintf(req, sizeof req, add_fmt, "nic0", "vmep2");
  ok(hcs_compute_modify(cs, req, &e) < 0, "hot-add under the name of an existing adapter is refused");
  hcs_error_release(&e);
  snprintf(cmd, sizeof cmd, "ip link show %s >/dev/null 2>&1", tap2);
  ok(system(cmd) != 0, "... and no tap was left by the refusals");
  snprintf(req, sizeof req, add_fmt, "nic1", "vmep2");
  ok(hcs_compute_modify(cs, req, &e) == 0, "hot-add an adapter on endpoint vmep2: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  ok(wait_console(con, "HCS-NET [eth0 eth1 lo]", mark), "the guest sees a new link (eth1)");
  snprintf(cmd, sizeof cmd, "ip link show %s 2>/dev/null | grep -q ' master '", tap2);
  ok(system(cmd) == 0, "its tap %s is on the network's bridge", tap2);
  mark = console_size(con);
  ok(hcs_compute_modify(
         cs, "{\"ResourcePath\":\"VirtualMachine/Devices/NetworkAdapters/nic1\",\"RequestType\":\"Remove\"}", &e) == 0,
     "hot-remove it: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  ok(wait_console(con, "HCS-NET [eth0 lo]", mark), "the guest's link is gone");
  snprintf(cmd, sizeof cmd, "ip link show %s >/dev/null 2>&1", tap2);
  ok(system(cmd) != 0, "the tap is gone");
  snprintf(req, sizeof req, add_fmt, "nic1", "vmep2");
  ok(hcs_compute_modify(cs, req, &e) == 0, "hot-add it again (the forced delete below removes its tap)");
  hcs_error_release(&e);
}

/* A container on the VM's network (busybox httpd in namespace `cns` on
 * endpoint `cep`): the guest fetches its page by the container's address
 * (hcs.fetch on the guest's command line, retried until it answers). */
static void container_peer(const char *con) {
  hcs_error_t e = NULL;
  cleanup_free char *rootfs = hcs_xasprintf("%s/rootfs", root);
  cleanup_free char *src = hcs_xstrdup(getenv("HCS_SOURCE_DIR") ?: ".");
  cleanup_free char *mk = hcs_xasprintf("'%s/tests/fixtures/make-busybox-rootfs.sh' '%s' && mkdir -p '%s/www' && "
                                        "echo hcs-container-page > '%s/www/index.html'",
                                        src, rootfs, rootfs, rootfs);
  ok(system(mk) == 0, "a busybox rootfs with a page");
  cleanup_free char *doc = hcs_xasprintf(
      "{\"Owner\":\"vmtest\",\"SchemaVersion\":{\"Major\":2,\"Minor\":1},\"Container\":{\"Storage\":{\"Path\":"
      "\"%s\"},\"Networking\":{\"Namespace\":\"cns\"}},\"Linux\":{\"CgroupParent\":\"%s\",\"Init\":{"
      "\"CommandArgs\":[\"/bin/httpd\",\"-f\",\"-p\",\"8080\",\"-h\",\"/www\"]}}}",
      rootfs, cgparent);
  hcs_system_t *c = hcs_compute_create(root, "peer", doc, NULL, &e);
  ok(c != NULL && hcs_compute_start(c, &e) == 0, "a busybox httpd container on the VM's network: %s",
     e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  bool got = wait_console(con, "HCS-FETCH hcs-container-page", 0);
  ok(got, "the guest fetches the container's page by its address");
  if (!got) {
    cleanup_free char *text = slurp(con);
    printf("# console:\n%s\n", text);
  }
  if (c) {
    hcs_compute_terminate(c, &e);
    hcs_compute_wait(c, 60000, &e);
    ok(hcs_compute_delete(c, false, &e) == 0, "delete the container: %s", e ? hcs_error_message(e) : "");
    hcs_error_release(&e);
    hcs_compute_close(c);
  }
}

static void web_checks(hcs_system_t *cs, const char *doc2, const char *con, int port, const char *tap,
                       const char *tap2) {
  hcs_error_t e = NULL;
  char cmd0[128];
  snprintf(cmd0, sizeof cmd0, "ip link show %s >/dev/null 2>&1", tap);
  ok(system(cmd0) == 0, "the VM has its tap %s", tap);
  cleanup_free char *other = hcs_xstrdup(doc2);
  hcs_system_t *two = hcs_compute_create(root, "web2", other, NULL, &e);
  ok(two == NULL, "a second VM on the same endpoint is refused");
  has_substr(hcs_error_message(e), "endpoint `vmep` is in use by another VM", "... saying the endpoint is in use");
  hcs_error_release(&e);
  hcs_compute_close(two);
  char *unknown = strstr(other, "\"vmep\"");
  memcpy(unknown, "\"nope\"", 6);
  two = hcs_compute_create(root, "web3", other, NULL, &e);
  ok(two == NULL, "an unknown endpoint is refused");
  has_substr(hcs_error_message(e), "nope", "... naming it: %s", hcs_error_message(e));
  hcs_error_release(&e);
  hcs_compute_close(two);
  /* Two adapters of one document on one endpoint. */
  char *twice = hcs_xstrdup(doc2);
  char *nic0 = strstr(twice, "\"nic0\":{\"EndpointId\":\"vmep\"}");
  if (nic0) {
    char *nd = hcs_xasprintf("%.*s\"nic0\":{\"EndpointId\":\"vmep2\"},\"nic1\":{\"EndpointId\":\"vmep2\"}%s",
                             (int)(nic0 - twice), twice, nic0 + strlen("\"nic0\":{\"EndpointId\":\"vmep\"}"));
    free(twice);
    twice = nd;
  }
  two = hcs_compute_create(root, "web4", twice, NULL, &e);
  free(twice);
  ok(two == NULL, "a document with two adapters on one endpoint is refused");
  has_substr(
      hcs_error_message(e),
      "`VirtualMachine.Devices.NetworkAdapters.nic1`: endpoint `vmep2` is already the endpoint of adapter `nic0`",
      "... saying so: %s", hcs_error_message(e));
  hcs_error_release(&e);
  hcs_compute_close(two);
  snprintf(cmd0, sizeof cmd0, "ip link show %s >/dev/null 2>&1", tap2);
  ok(system(cmd0) != 0, "... and leaves no tap");
  snprintf(cmd0, sizeof cmd0, "ip link show %s >/dev/null 2>&1", tap);
  ok(hcs_compute_start(cs, &e) == 0, "start");
  ok(wait_console(con, "HCS-HTTP-READY", 0), "the guest serves HTTP on the endpoint's address");
  char cmd[512];
  snprintf(cmd, sizeof cmd, "curl -sf -m 10 -o %s/page http://127.0.0.1:%d/", root, port);
  bool got = false;
  for (int i = 0; i < 30 && !got; i++) {
    got = system(cmd) == 0;
    if (!got) sleep(1);
  }
  snprintf(cmd, sizeof cmd, "%s/page", root);
  cleanup_free char *page = slurp(cmd);
  ok(got, "the port mapping reaches the guest");
  if (!got) {
    cleanup_free char *c = slurp(con);
    printf("# console:\n%s\n", c);
    snprintf(cmd, sizeof cmd, "ip -o link show | grep hcst; ip -o addr show; nft list ruleset | grep -B3 -A3 %d", port);
    if (system(cmd) < 0) printf("# system failed\n");
    if (getenv("HCS_VM_TEST_HOLD")) sleep(150); /* to look at it by hand */
  }
  has_substr(page, "hcs-vm-web served", "... and its page");
  nic_hotplug(cs, con, tap2);
  /* Saved with the hot-added adapter, deleted, restored: the restored
   * QEMU has both adapters where the saved one had them (else QEMU
   * refuses the migration stream), and the port mapping reaches it. */
  cleanup_free char *save = hcs_xasprintf("%s/web.state", root);
  ok(hcs_vm_save(cs, save, &e) == 0, "save the VM with its hot-added adapter: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  ok(hcs_compute_delete(cs, true, &e) == 0, "delete it");
  hcs_error_release(&e);
  hcs_compute_close(cs);
  cs = hcs_vm_restore(root, "web-restored", save, &e);
  ok(cs != NULL, "restore it: %s", cs ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  if (cs == NULL) return;
  ok(hcs_compute_start(cs, &e) == 0, "start the restored VM: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  snprintf(cmd, sizeof cmd,
           "ip link show %s 2>/dev/null | grep -q ' master ' && ip link show %s 2>/dev/null | grep -q ' master '", tap,
           tap2);
  ok(system(cmd) == 0, "both taps are on the bridge again");
  snprintf(cmd, sizeof cmd, "curl -sf -m 10 -o %s/page2 http://127.0.0.1:%d/", root, port);
  got = false;
  for (int i = 0; i < 30 && !got; i++) {
    got = system(cmd) == 0;
    if (!got) sleep(1);
  }
  ok(got, "the port mapping reaches the restored guest");
  container_peer(con);
  /* The monitor killed: QEMU runs on unwatched; a forced delete stops it
   * and removes what the monitor would have (cgroup, tap). */
  json_t *p = props(cs);
  pid_t mon = (pid_t)json_integer_value(json_object_get(p, "MonitorPid"));
  pid_t qemu = (pid_t)json_integer_value(json_object_get(p, "Pid"));
  json_decref(p);
  ok(mon > 0 && kill(mon, SIGKILL) == 0, "SIGKILL the VM's monitor");
  char stat[64];
  snprintf(stat, sizeof stat, "/proc/%d/stat", (int)mon);
  for (int i = 0; i < 300; i++) {
    cleanup_free char *st = slurp(stat);
    char *rp = strrchr(st, ')');
    if (rp == NULL || rp[2] == 'Z' || rp[2] == 'X') break;
    usleep(10 * 1000);
  }
  ok(kill(qemu, 0) == 0, "QEMU outlives its monitor");
  /* Its agent relay went with it: a process creation says so at once
   * (it waited for the agent's timeout before). */
  hcs_process_t *orphan = hcs_process_create(cs, "{\"CommandArgs\":[\"/bin/true\"]}", &e);
  ok(orphan == NULL && e && strstr(hcs_error_message(e), "the VM's monitor is gone"),
     "no process without the monitor: %s", e ? hcs_error_message(e) : "created");
  hcs_error_release(&e);
  hcs_process_close(orphan);
  ok(hcs_compute_delete(cs, true, &e) == 0, "a forced delete: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  hcs_compute_close(cs);
  snprintf(stat, sizeof stat, "/proc/%d/stat", (int)qemu);
  bool gone = false;
  for (int i = 0; i < 300 && !gone; i++) {
    cleanup_free char *st = slurp(stat);
    char *rp = strrchr(st, ')');
    gone = rp == NULL || rp[2] == 'Z' || rp[2] == 'X';
    if (!gone) usleep(10 * 1000);
  }
  ok(gone, "QEMU is gone");
  ok(system(cmd0) != 0, "its tap is gone");
  snprintf(cmd0, sizeof cmd0, "ip link show %s >/dev/null 2>&1", tap2);
  ok(system(cmd0) != 0, "and the hot-added one (state.json's Taps)");
}

/* A VM adapter on an hcs NAT network: the endpoint's port mapping reaches
 * busybox httpd in the guest; the endpoint cannot serve two VMs; the tap
 * goes with the VM. */
static void network(void) {
  hcs_error_t e = NULL;
  hcs_net_t *net = hcs_net_open(root, &e);
  ok(net != NULL, "open the network store");
  if (net == NULL) return;
  int port = 20000 + (int)(getpid() % 20000);
  cleanup_free char *ep2 = NULL;
  cleanup_free char *n = hcs_net_network_create(net, "{\"Name\":\"vmnat\",\"Type\":\"NAT\"}", &e);
  ok(n != NULL, "a NAT network: %s", n ? "" : hcs_error_message(e));
  cleanup_free char *eps = hcs_xasprintf("{\"Name\":\"vmep\",\"HostComputeNetwork\":\"vmnat\",\"Policies\":[{\"Type\":"
                                         "\"PortMapping\",\"Settings\":{\"Protocol\":\"TCP\",\"InternalPort\":80,"
                                         "\"ExternalPort\":%d}}]}",
                                         port);
  cleanup_free char *ep = n ? hcs_net_endpoint_create(net, eps, &e) : NULL;
  ok(ep != NULL, "an endpoint with a port mapping: %s", ep ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  /* The container peer's namespace and endpoint, made first: the guest's
   * command line carries its address. */
  cleanup_free char *ns = hcs_net_namespace_create(net, "{\"Id\":\"cns\"}", &e);
  cleanup_free char *cep =
      ns ? hcs_net_endpoint_create(
               net, "{\"Name\":\"cep\",\"HostComputeNetwork\":\"vmnat\",\"HostComputeNamespace\":\"cns\"}", &e)
         : NULL;
  ok(cep != NULL, "a namespace and an endpoint for a container: %s", cep ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  json_t *cepj = json_loads(cep ? cep : "{}", 0, NULL);
  const char *cip =
      json_string_value(json_object_get(json_array_get(json_object_get(cepj, "IpConfigurations"), 0), "IpAddress"));
  cleanup_free char *mode = hcs_xasprintf("http hcs.token=served hcs.fetch=%s:8080", cip ? cip : "none");
  json_decref(cepj);
  cleanup_free char *con = hcs_xasprintf("%s/net.log", root);
  cleanup_free char *doc2 = vm_doc(mode, con, NULL, "\"NetworkAdapters\":{\"nic0\":{\"EndpointId\":\"vmep\"}}");
  hcs_system_t *cs = ep ? hcs_compute_create(root, "web", doc2, NULL, &e) : NULL;
  ok(cs != NULL, "create a VM on the endpoint: %s", cs ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  if (cs == NULL) goto out;
  json_t *epj = json_loads(ep, 0, NULL);
  char tap[16];
  hcs_net_tap_name(json_string_value(json_object_get(epj, "Id")), tap);
  json_decref(epj);
  ep2 = hcs_net_endpoint_create(net, "{\"Name\":\"vmep2\",\"HostComputeNetwork\":\"vmnat\"}", &e);
  ok(ep2 != NULL, "a second endpoint: %s", ep2 ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  epj = json_loads(ep2 ? ep2 : "{}", 0, NULL);
  char tap2[16];
  hcs_net_tap_name(json_string_value(json_object_get(epj, "Id")) ?: "", tap2);
  json_decref(epj);
  web_checks(cs, doc2, con, port, tap, tap2);
out:
  hcs_error_release(&e);
  if (ns) hcs_net_namespace_delete(net, "cns", &e);
  hcs_error_release(&e);
  ok(hcs_net_network_delete(net, "vmnat", true, &e) == 0, "remove the network");
  hcs_error_release(&e);
  hcs_net_close(net);
}

static uint64_t start_time(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  cleanup_free char *st = slurp(path);
  char *rp = strrchr(st, ')');
  if (rp == NULL || rp[2] == 'Z' || rp[2] == 'X') return 0;
  unsigned long long t = 0;
  /* Field 22 (starttime); field 3 follows ") ". */
  char *p = rp + 2;
  for (int f = 3; f < 22 && p; f++)
    p = strchr(p + 1, ' ');
  if (p) t = strtoull(p + 1, NULL, 10);
  return t;
}

/* A create killed between starting QEMU and writing state.json (the
 * creator and the monitor both SIGKILLed, the monitor stopped at its
 * pause point "vm monitor: QEMU started"): the next enumerate sweeps the
 * directory, and with it QEMU and its cgroup (qemu.json records them). */
static void crash_window(const char *self) {
  cleanup_free char *con = hcs_xasprintf("%s/crash.log", root), *docp = hcs_xasprintf("%s/crash.json", root);
  cleanup_free char *doc = vm_doc("idle", con, NULL, NULL);
  FILE *f = fopen(docp, "w");
  ok(f && fputs(doc, f) >= 0 && fclose(f) == 0, "a VM document");
  cleanup_free char *exe = hcs_xstrdup(self);
  char *slash = strrchr(exe, '/');
  if (slash) *slash = '\0';
  cleanup_free char *hcs = hcs_xasprintf("%s/../hcs", exe);
  pid_t creator = fork();
  if (creator == 0) {
    setenv("HCS_ROOT", root, 1);
    setenv("HCS_PAUSE_AT", "vm monitor: QEMU started", 1);
    execl(hcs, hcs, "create", "-n", "crashvm", docp, (char *)NULL);
    _exit(127);
  }
  cleanup_free char *rec = hcs_xasprintf("%s/run/compute/crashvm/qemu.json", root);
  pid_t qemu = 0;
  for (int i = 0; i < 600 && qemu <= 0; i++) {
    json_t *r = json_load_file(rec, 0, NULL);
    qemu = (pid_t)json_integer_value(json_object_get(r, "Pid"));
    json_decref(r);
    if (qemu <= 0) usleep(100 * 1000);
  }
  ok(qemu > 0, "the monitor recorded QEMU's pid before state.json (qemu.json)");
  /* The monitor is QEMU's parent, stopped at its pause point. */
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)qemu);
  pid_t mon = 0;
  for (int i = 0; i < 600 && mon <= 1; i++) {
    cleanup_free char *st = slurp(path);
    char *rp = strrchr(st, ')');
    mon = rp ? (pid_t)strtol(rp + 4, NULL, 10) : 0;
    cleanup_free char *comm = hcs_xasprintf("/proc/%d/exe", (int)qemu);
    char target[PATH_MAX] = "";
    if (readlink(comm, target, sizeof target - 1) < 0 || strstr(target, "qemu") == NULL) mon = 0; /* not exec'd yet */
    if (mon <= 1) usleep(100 * 1000);
  }
  uint64_t qstart = start_time(qemu);
  ok(mon > 1 && qstart > 0, "QEMU runs, under its monitor %d", (int)mon);
  ok(kill(creator, SIGKILL) == 0 && waitpid(creator, NULL, 0) == creator, "SIGKILL the creator");
  ok(mon > 1 && kill(mon, SIGKILL) == 0, "SIGKILL the monitor between QEMU's start and state.json");
  for (int i = 0; i < 300 && start_time(mon) != 0; i++)
    usleep(10 * 1000);
  hcs_error_t e = NULL;
  cleanup_free char *list = hcs_compute_enumerate(root, NULL, &e);
  hcs_error_release(&e);
  ok(list && strstr(list, "crashvm") == NULL, "enumerate does not list the half-created VM");
  ok(qstart == 0 || start_time(qemu) != qstart, "its sweep killed the QEMU left behind");
  snprintf(path, sizeof path, "%s/run/compute/crashvm", root);
  ok(access(path, F_OK) < 0, "and removed its directory");
}

/* The accelerator probe: a kernel booted under KVM for real (it hangs on
 * nested hosts), cached in the run root with its reason; HCS_VM_ACCEL
 * overrides. */
static void accel(void) {
  cleanup_free char *rr = hcs_xasprintf("%s/accel-run", root), *cache = hcs_xasprintf("%s/vm-accel", rr);
  unsetenv("HCS_VM_ACCEL");
  const char *a = hcs_vm_accel_probe(rr, kernel);
  ok(a && (strcmp(a, "kvm") == 0 || strcmp(a, "tcg") == 0), "the probe picks kvm or tcg: %s", a ? a : "(null)");
  cleanup_free char *text = slurp(cache);
  ok(a && strncmp(text, a, 3) == 0 && strlen(text) > 4, "... cached with its reason: %s", text);
  char *why = NULL;
  const char *again = hcs_vm_accel(rr, &why);
  ok(again && a && strcmp(again, a) == 0, "the cached answer is used");
  free(why);
  setenv("HCS_VM_ACCEL", strcmp(a ? a : "", "kvm") == 0 ? "tcg" : "kvm", 1);
  again = hcs_vm_accel(rr, &why);
  ok(again && a && strcmp(again, a) != 0, "HCS_VM_ACCEL overrides it");
  is_str(why, "HCS_VM_ACCEL", "... and says so");
  free(why);
  setenv("HCS_VM_ACCEL", "tcg", 1);
}

/* `test_vm [SECTION...]` runs only those sections (bad, accel, counter, disk, network, crash;
 * the UEFI boot is test_vm_uefi). */
static int n_only;
static char **only;
static bool want(const char *name) {
  if (n_only == 0) return true;
  for (int i = 0; i < n_only; i++)
    if (strcmp(only[i], name) == 0) return true;
  return false;
}

int main(int argc, char **argv) {
  n_only = argc - 1;
  only = argv + 1;
  if (!vm_test_setup("vm")) return 0;
  snprintf(initrd, sizeof initrd, "%s/initrd.gz", root);
  const char *src = getenv("HCS_SOURCE_DIR");
  char cmd[PATH_MAX * 2];
  snprintf(cmd, sizeof cmd, "%s/tests/tools/vm-initrd.sh %s", src ? src : ".", initrd);
  ok(system(cmd) == 0, "build the test initramfs");
  if (want("bad")) bad_documents();
  if (want("accel")) accel();
  if (want("counter")) counter_pause_save_restore();
  if (want("disk")) disk_and_shutdown();
  if (want("network")) network();
  if (want("crash")) crash_window(argv[0]);
  return vm_test_done();
}
