# Tests of lcmcoord.ssh: a cmocka suite for the SSH client's logic (fingerprints, output
# caps, failures before any SSH is spoken), a busted spec of the Lua face under a stock
# lua5.4, and an end-to-end suite running `lcmcoord run` scripts (the shipped
# coordinate_vnf_drain.lua included) against a real OpenSSH sshd it starts on a free
# loopback port.
lcmc_add_cmocka_test(test_ssh_logic
  SOURCES unit/test_ssh_logic.c
  LIBS lcmcoord_runtime_static lcmc::jansson lcmc::curl)
target_include_directories(test_ssh_logic PRIVATE "${PROJECT_SOURCE_DIR}/runtime/src")

lcmc_add_e2e_test(e2e_ssh test_ssh.py)
lcmc_add_busted_test(lua_ssh_spec ssh_spec.lua)

# SSH commands inside Lua tasks (yielding s:exec), hosted by a small driver program.
add_executable(lua_tasks_driver unit/lua_tasks_driver.c)
target_link_libraries(lua_tasks_driver PRIVATE lcmcoord_luastatic lcmcoord_runtime lcmc::lua)
target_include_directories(lua_tasks_driver PRIVATE "${PROJECT_SOURCE_DIR}/runtime/include")
lcmc_add_e2e_test(e2e_ssh_tasks test_ssh_tasks.py)
set_property(TEST e2e_ssh_tasks APPEND PROPERTY ENVIRONMENT
             "LCMC_TASKS_DRIVER=$<TARGET_FILE:lua_tasks_driver>")
