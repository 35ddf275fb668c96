# Finds every third-party library lcmcoord builds against, all from Debian 12 packages
# (see vendor/README.md for the package names and why each is here), and exposes each as
# an imported target named lcmc::<name> so the rest of the build never spells out flags.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

# libcurl: found at any version, then held to the minimum the sources need, with a message
# naming the option that needs it (LcmcoordCurlMinimum.cmake).
pkg_check_modules(LCMC_CURL REQUIRED IMPORTED_TARGET libcurl)
include(LcmcoordCurlMinimum)
lcmc_check_curl_version("${PROJECT_SOURCE_DIR}" "${LCMC_CURL_VERSION}")
pkg_check_modules(LCMC_JANSSON REQUIRED IMPORTED_TARGET jansson>=2.13)
pkg_check_modules(LCMC_OPENSSL REQUIRED IMPORTED_TARGET openssl>=3.0)
pkg_check_modules(LCMC_LUA REQUIRED IMPORTED_TARGET lua5.4)
pkg_check_modules(LCMC_MHD REQUIRED IMPORTED_TARGET libmicrohttpd>=0.9.75)
pkg_check_modules(LCMC_GNUTLS REQUIRED IMPORTED_TARGET gnutls>=3.7)
pkg_check_modules(LCMC_SSH2 REQUIRED IMPORTED_TARGET libssh2)

add_library(lcmc::curl ALIAS PkgConfig::LCMC_CURL)
add_library(lcmc::jansson ALIAS PkgConfig::LCMC_JANSSON)
add_library(lcmc::openssl ALIAS PkgConfig::LCMC_OPENSSL)
add_library(lcmc::lua ALIAS PkgConfig::LCMC_LUA)
add_library(lcmc::microhttpd ALIAS PkgConfig::LCMC_MHD)
add_library(lcmc::gnutls ALIAS PkgConfig::LCMC_GNUTLS)
add_library(lcmc::ssh2 ALIAS PkgConfig::LCMC_SSH2)

# yajl: the fast JSON lexer and generator in front of jansson (runtime/src/json_text.c). Its
# static archive (position-independent, from libyajl-dev) is linked into liblcmcoord, which
# keeps its symbols to itself: no libyajl2 to install or map at run time.
pkg_check_modules(LCMC_YAJL REQUIRED yajl>=2.1)
find_library(LCMC_YAJL_ARCHIVE NAMES libyajl_s.a HINTS ${LCMC_YAJL_LIBRARY_DIRS} REQUIRED)
add_library(lcmc::yajl STATIC IMPORTED)
set_target_properties(lcmc::yajl PROPERTIES IMPORTED_LOCATION "${LCMC_YAJL_ARCHIVE}")

# libedit: line editing and history for `lcmcoord repl` (its readline-compatible API).
pkg_check_modules(LCMC_EDIT REQUIRED IMPORTED_TARGET libedit)
add_library(lcmc::edit ALIAS PkgConfig::LCMC_EDIT)

# The store of `lcmcoord serve`: SQLite (embedded, durable) and libpq (several instances on
# one PostgreSQL database).
pkg_check_modules(LCMC_SQLITE3 REQUIRED IMPORTED_TARGET sqlite3>=3.35)
pkg_check_modules(LCMC_PQ REQUIRED IMPORTED_TARGET libpq>=13)
add_library(lcmc::sqlite3 ALIAS PkgConfig::LCMC_SQLITE3)
add_library(lcmc::pq ALIAS PkgConfig::LCMC_PQ)

# `lcmcoord serve`'s authentication: libjwt verifies Bearer JWTs (PEM keys, OpenSSL inside);
# libcrypt (libxcrypt) checks the users file's yescrypt/sha512/bcrypt hashes.
pkg_check_modules(LCMC_JWT REQUIRED IMPORTED_TARGET libjwt>=1.10)
pkg_check_modules(LCMC_CRYPT REQUIRED IMPORTED_TARGET libcrypt>=4.4)
add_library(lcmc::jwt ALIAS PkgConfig::LCMC_JWT)
add_library(lcmc::crypt ALIAS PkgConfig::LCMC_CRYPT)

if(LCMCOORD_BUILD_TESTS)
  pkg_check_modules(LCMC_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
  add_library(lcmc::cmocka ALIAS PkgConfig::LCMC_CMOCKA)
  find_program(LCMC_LUA_INTERPRETER NAMES lua5.4 REQUIRED)
  find_program(LCMC_BUSTED NAMES busted REQUIRED)
  find_program(LCMC_PYTHON NAMES python3 REQUIRED)
  find_program(LCMC_CURL_CLI NAMES curl REQUIRED)
  find_program(LCMC_OPENSSL_CLI NAMES openssl REQUIRED)
endif()
