-- busted helper, loaded before every spec (see tests/CMakeLists.txt).
-- Gives specs `require "spec_util"`: temporary roots, running commands and
-- the built `hcs` binary, and snapshots of kernel objects to prove no leaks.
package.path = (os.getenv("HCS_SOURCE_DIR") or ".") .. "/tests/lua/?.lua;" .. package.path
