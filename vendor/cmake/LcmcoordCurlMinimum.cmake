# The oldest libcurl lcmcoord can be built against, derived from what the sources use rather
# than declared by hand. LCMC_CURL_SYMBOL_VERSIONS holds the libcurl release that introduced
# each option, info, URL-API part and function the C sources name (from libcurl's own
# symbols-in-versions); lcmc_curl_required_version() scans the sources for them and takes
# the newest. Configure then fails, with a message naming the symbol, when the libcurl
# found is older, and when the declared minimum (LCMC_CURL_MINIMUM, used by pkg-config
# files and packages) falls behind what the sources need.
#
# Script mode, for the test of this check:
#   cmake -DLCMC_SOURCE_DIR=<tree> -DLCMC_CURL_FOUND_VERSION=7.84.0 -P LcmcoordCurlMinimum.cmake

if(CMAKE_SCRIPT_MODE_FILE)
  cmake_minimum_required(VERSION 3.25)
endif()

set(LCMC_CURL_MINIMUM 7.85.0)

# Only symbols introduced after 7.20 are listed: anything older is in every libcurl that
# has the ones below. Keep it to what the sources use; the scan ignores the rest.
set(LCMC_CURL_SYMBOL_VERSIONS
    "CURLOPT_PROTOCOLS_STR=7.85.0"
    "curl_easy_header=7.84.0" # 7.83.0 had it only as a build-time experiment
    "CURLH_HEADER=7.84.0"
    "CURLINFO_RETRY_AFTER=7.66.0"
    "curl_multi_poll=7.66.0"
    "curl_multi_wakeup=7.68.0"
    "curl_url=7.62.0"
    "curl_url_get=7.62.0"
    "curl_url_set=7.62.0"
    "curl_url_cleanup=7.62.0"
    "curl_url_dup=7.62.0"
    "CURLUPART_URL=7.62.0"
    "CURLUPART_SCHEME=7.62.0"
    "CURLUPART_USER=7.62.0"
    "CURLUPART_PASSWORD=7.62.0"
    "CURLUPART_OPTIONS=7.62.0"
    "CURLUPART_HOST=7.62.0"
    "CURLUPART_PORT=7.62.0"
    "CURLUPART_PATH=7.62.0"
    "CURLUPART_QUERY=7.62.0"
    "CURLUPART_FRAGMENT=7.62.0"
    "CURLU_DEFAULT_PORT=7.62.0"
    "CURLU_GUESS_SCHEME=7.62.0"
    "CURLINFO_TOTAL_TIME_T=7.61.0"
    "CURLAUTH_BEARER=7.61.0"
    "CURLINFO_ACTIVESOCKET=7.45.0"
    "CURLE_SSL_INVALIDCERTSTATUS=7.41.0"
    "CURLE_SSL_PINNEDPUBKEYNOTMATCH=7.39.0"
    "CURLOPT_XOAUTH2_BEARER=7.33.0"
    "CURLMOPT_MAX_HOST_CONNECTIONS=7.30.0"
    "CURLOPT_CLOSESOCKETFUNCTION=7.21.7"
    "CURLOPT_CLOSESOCKETDATA=7.21.7")

# Sets `out_version` to the newest release any used symbol needs and `out_symbol` to it.
function(lcmc_curl_required_version source_dir out_version out_symbol)
  file(GLOB_RECURSE sources "${source_dir}/runtime/src/*.c" "${source_dir}/runtime/src/*.h"
       "${source_dir}/bindings/*.c" "${source_dir}/bindings/*.h")
  set(used "")
  foreach(source IN LISTS sources)
    file(STRINGS "${source}" lines REGEX "CURL|curl_")
    foreach(line IN LISTS lines)
      string(REGEX MATCHALL "(CURL[A-Z]*_[A-Z0-9_]+|curl_[a-z_]+)" names "${line}")
      list(APPEND used ${names})
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES used)
  set(newest 7.20.0)
  set(newest_symbol "")
  foreach(entry IN LISTS LCMC_CURL_SYMBOL_VERSIONS)
    string(REPLACE "=" ";" pair "${entry}")
    list(GET pair 0 symbol)
    list(GET pair 1 version)
    if(symbol IN_LIST used AND version VERSION_GREATER newest)
      set(newest ${version})
      set(newest_symbol ${symbol})
    endif()
  endforeach()
  set(${out_version} ${newest} PARENT_SCOPE)
  set(${out_symbol} ${newest_symbol} PARENT_SCOPE)
endfunction()

# Fails configure when `found` is older than what the sources need, or when the declared
# minimum is older than that.
function(lcmc_check_curl_version source_dir found)
  lcmc_curl_required_version("${source_dir}" required symbol)
  if(LCMC_CURL_MINIMUM VERSION_LESS required)
    message(FATAL_ERROR "lcmcoord's sources use ${symbol}, which needs libcurl ${required}, but "
                        "the declared minimum (LCMC_CURL_MINIMUM) is ${LCMC_CURL_MINIMUM}: "
                        "raise it in vendor/cmake/LcmcoordCurlMinimum.cmake and vendor/README.md")
  endif()
  if(found VERSION_LESS LCMC_CURL_MINIMUM)
    message(FATAL_ERROR "libcurl ${found} is too old: lcmcoord needs libcurl "
                        "${LCMC_CURL_MINIMUM} or newer (it uses ${symbol}, new in ${required})")
  endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE AND LCMC_CURL_FOUND_VERSION)
  lcmc_check_curl_version("${LCMC_SOURCE_DIR}" "${LCMC_CURL_FOUND_VERSION}")
  message(STATUS "libcurl ${LCMC_CURL_FOUND_VERSION} is new enough (${LCMC_CURL_MINIMUM})")
endif()
