---@meta lcmcoord
-- Lua language server annotations of the `lcmcoord` module, for editor completion and type
-- checks of CoordinateVNF scripts. Declarations only: the module itself is C
-- (bindings/lua/*.c); docs/lua-api.md describes every function. Installed as
-- share/lcmcoord/lua-annotations/lcmcoord.lua: add that directory to the language server's
-- `Lua.workspace.library`.

---@class lcmcoord
---@field version string The version alone, e.g. "0.1.0".
---@field _VERSION string "lcmcoord 0.1.0".
---@field null lightuserdata JSON null (also lcmcoord.json.null).
---@field json lcmcoord.json The module's JSON (the converter every request and answer uses).
---@field auth lcmcoord.authlib Auth objects from an ETSI `authentication` structure.
---@field retry lcmcoord.retrylib Retry policies.
---@field http lcmcoord.httplib HTTP requests to any URL.
---@field ssh lcmcoord.sshlib Commands on the VNFC over SSH.
---@field log lcmcoord.log Log lines through the engine's log.
local lcmcoord = {}

-- ---- shared shapes ---------------------------------------------------------------------

---@alias lcmcoord.error_kind
---| "usage"
---| "invalid_request"
---| "transport"
---| "tls"
---| "auth"
---| "http"
---| "protocol"
---| "deadline"
---| "cancelled"
---| "nomem"

---An error value: every failure is one (its `__tostring` is `message`).
---@class lcmcoord.error
---@field kind lcmcoord.error_kind What went wrong.
---@field message string One line for humans; never holds credentials.
---@field status integer? HTTP status of the answer that failed.
---@field problem table? ProblemDetails of that answer.
---@field method string? Method of the request that failed.
---@field url string? URL of the request that failed.

---The ETSI `authentication` structure of additionalParams.
---@class lcmcoord.authentication
---@field authType string[] "BASIC", "OAUTH2_CLIENT_CREDENTIALS" or "OAUTH2_CLIENT_CERT".
---@field paramsBasic { userName: string, password: string }?
---@field paramsOauth2ClientCredentials { clientId: string, clientPassword: string, tokenEndpoint: string }?
---@field paramsOauth2ClientCert { clientId: string, certificateRef: { type: string, value: string }, tokenEndpoint: string }?

---TLS settings; absent: the host's defaults (flags, environment, configuration file).
---@class lcmcoord.tls
---@field cacert string? CA bundle (PEM).
---@field capath string? CA directory.
---@field cert string? Client certificate (PEM) for mutual TLS.
---@field key string? Its private key (PEM).
---@field key_password string? Passphrase of an encrypted key.
---@field verify boolean? false turns verification off (warned); default true.

---An LcmCoordRequest (SOL 002).
---@class lcmcoord.LcmCoordRequest
---@field vnfInstanceId string
---@field vnfLcmOpOccId string
---@field lcmOperationType string
---@field coordinationActionName string
---@field inputParams table?
---@field _links { vnfLcmOpOcc: { href: string }, vnfInstance: { href: string } }

---An LcmCoord, the EM's answer.
---@class lcmcoord.LcmCoord
---@field id string
---@field coordinationActionName string
---@field coordinationResult "CONTINUE"|"ABORT"|"CANCELLED"
---@field startTime string?
---@field endTime string?
---@field error table? ProblemDetails (ABORT usually carries one).
---@field outputParams table?
---@field _links table?

---What post, get, cancel, api_versions and http.request return for any HTTP status.
---@class lcmcoord.response
---@field status integer HTTP status.
---@field headers table<string, string> By lower-case name; repeated values joined with ", ".
---@field body string The body ("" when empty).
---@field json any The body decoded, when it is JSON.
---@field elapsed number Seconds the request took.
---@field url string The URL requested.
---@field retry_after number? The answer's Retry-After in seconds, when it had one.

---The record a VNFM keeps of coordinations.
---@class lcmcoord.record
---@field lcmCoordinations table[] id, coordinationActionName, coordinationResult, startTime, endTime, endpointType, delay.
---@field rejectedLcmCoordinations table[] coordinationActionName, rejectionTime, endpointType, delay.

-- ---- module functions --------------------------------------------------------------------

---The call Tacker's sample scripts make. Returns the LcmCoord for any valid result
---(CONTINUE, ABORT, CANCELLED); raises an error value on every failure.
---@param endpoint string The EM's apiRoot, e.g. "https://em.example:6789".
---@param authentication lcmcoord.authentication|lcmcoord.auth|nil
---@param coord_req lcmcoord.LcmCoordRequest
---@param timeout number? Seconds for the whole coordination; not a positive number: 3600 (or the host's configured default).
---@return lcmcoord.LcmCoord
function lcmcoord.create_coordination(endpoint, authentication, coord_req, timeout) end

---@class lcmcoord.client_options
---@field endpoint string The EM's apiRoot (required).
---@field authentication lcmcoord.authentication|lcmcoord.auth|nil
---@field timeout number? Default deadline of a coordination and of a request (3600).
---@field version string? The Version header ("1.0.0").
---@field tls lcmcoord.tls?
---@field wait_floor number? Shortest wait between two attempts (1).
---@field default_interval number? Wait when an answer has no Retry-After (5).
---@field max_body integer? Largest response body accepted, bytes (1 MiB).
---@field oauth2_client_auth "basic"|"body"|nil How the client secret reaches the token endpoint.
---@field token_refresh_margin number? Renew a token this many seconds before it expires (30).
---@field allow_cross_origin boolean? Follow a Location on another origin, without credentials.

---A client of one EM. Raises on options the runtime refuses.
---@param options lcmcoord.client_options
---@return lcmcoord.client
function lcmcoord.client(options) end

---true when `v` is an error value of this module.
---@param v any
---@return boolean
function lcmcoord.is_error(v) end

---The record of every coordination made in this Lua state, by any client.
---@return lcmcoord.record
function lcmcoord.record() end

---@class lcmcoord.request_fields
---@field action string coordinationActionName (required).
---@field instance string? vnfInstanceId (default: a random UUID).
---@field op_occ string? vnfLcmOpOccId (default: a random UUID).
---@field operation string? lcmOperationType (default "CHANGE_VNFPKG").
---@field input table? inputParams.
---@field vnfm string? Base of the _links hrefs ("http://vnfm.example:9890").

---Builds a valid LcmCoordRequest from a few fields.
---@param fields lcmcoord.request_fields
---@return lcmcoord.LcmCoordRequest
function lcmcoord.request(fields) end

---Waits on the engine. Returns true, or nil and an error of kind "cancelled".
---@param seconds number
---@return true|nil ok
---@return lcmcoord.error? err
function lcmcoord.sleep(seconds) end

---Seconds on a monotonic clock, for measuring intervals.
---@return number
function lcmcoord.now() end

-- ---- client ----------------------------------------------------------------------------

---@class lcmcoord.client
local client = {}

---Runs one coordination: POST, retries, polls, within `timeout`. The LcmCoord for any valid
---result, or nil and the error.
---@param req lcmcoord.LcmCoordRequest
---@param timeout number?
---@return lcmcoord.LcmCoord|nil coord
---@return lcmcoord.error? err
function client:coordinate(req, timeout) end

---@class lcmcoord.batch_options
---@field timeout number? Deadline of each coordination.
---@field max_connections integer? Connections to the EM at most.

---@class lcmcoord.batch_outcome
---@field coord lcmcoord.LcmCoord? The LcmCoord, when the coordination got a valid result.
---@field err lcmcoord.error? The error otherwise.

---Runs many coordinations at once; one outcome per request, in order.
---@param reqs lcmcoord.LcmCoordRequest[]
---@param opts lcmcoord.batch_options?
---@return lcmcoord.batch_outcome[]
function client:coordinate_all(reqs, opts) end

---One POST /lcmcoord/v1/coordinations, no retry, no polling.
---@param req lcmcoord.LcmCoordRequest|string A table (sent as JSON) or a body as it is.
---@param timeout number?
---@return lcmcoord.response|nil response
---@return lcmcoord.error? err
function client:post(req, timeout) end

---GET /lcmcoord/v1/coordinations/{id}, or a URL on the EM's origin.
---@param id_or_url string
---@param timeout number?
---@return lcmcoord.response|nil response
---@return lcmcoord.error? err
function client:get(id_or_url, timeout) end

---POST /lcmcoord/v1/coordinations/{id}/cancel.
---@param id string
---@param timeout number?
---@return lcmcoord.response|nil response
---@return lcmcoord.error? err
function client:cancel(id, timeout) end

---GET /lcmcoord/v1/api_versions.
---@param timeout number?
---@return lcmcoord.response|nil response
---@return lcmcoord.error? err
function client:api_versions(timeout) end

---The record of this client's coordinations.
---@return lcmcoord.record
function client:record() end

---Frees the client; idempotent (also `<close>` and the garbage collector).
function client:close() end

-- ---- json ------------------------------------------------------------------------------

---@class lcmcoord.json
---@field null lightuserdata JSON null.
---@field max_depth integer The deepest nesting of arrays and objects accepted (2048).
local json = {}

--- Compact JSON text; integers stay integers, floats get 17 significant digits. Raises,
--- naming where, on a value with no JSON form (function, cycle, mixed or sparse keys...).
---@param value any
---@return string
function json.encode(value) end

--- Any JSON value; arrays come back marked (json.is_array), null as json.null. Raises on
--- duplicate keys, NUL, invalid UTF-8, integers beyond 64 bits, nesting past max_depth.
---@param text string
---@return any
function json.decode(text) end

--- Marks t (or a new empty table) as a JSON array, so that empty it encodes as [].
---@param t? table
---@return table
function json.array(t) end

---@param value any
---@return boolean
function json.is_array(value) end

-- ---- auth ------------------------------------------------------------------------------

---@class lcmcoord.authlib
local authlib = {}

---An auth object; raises an error value when the structure is incomplete.
---@param authentication lcmcoord.authentication
---@param tls lcmcoord.tls?
---@return lcmcoord.auth
function authlib.new(authentication, tls) end

---@class lcmcoord.auth
local auth = {}

---The Authorization value (fetching a token when needed), nil for none, or nil and the
---error. A secret: do not print it.
---@param timeout number?
---@return string|nil value
---@return lcmcoord.error? err
function auth:header(timeout) end

---@return "BASIC"|"OAUTH2_CLIENT_CREDENTIALS"|"OAUTH2_CLIENT_CERT"|"NONE"
function auth:type() end

---Closes it; idempotent.
function auth:close() end

-- ---- retry -----------------------------------------------------------------------------

---@class lcmcoord.retrylib
local retrylib = {}

---@class lcmcoord.retry_options
---@field attempts integer? Attempts in all (3); 0: no limit but the deadline.
---@field deadline number? Seconds from the first attempt after which none starts.
---@field base number? First wait when the answer names none (1).
---@field multiplier number? Growth of each further wait (2).
---@field max number? Longest single wait (30).
---@field jitter number? Random shortening of each wait, 0..1 (0.1).
---@field floor number? No wait is shorter (1).
---@field retry_on (integer|"transport")[]? Statuses to retry, and "transport" ({429, 503, "transport"}).
---@field honour_retry_after boolean? A Retry-After sets the next wait (true).

---@param options lcmcoord.retry_options?
---@return lcmcoord.retry_policy
function retrylib.policy(options) end

---@class lcmcoord.retry_policy
local policy = {}

---Calls fn(attempt) until it succeeds or the attempts or the deadline run out; returns what
---fn returned last.
---@param fn fun(attempt: integer): any, any
---@return any
---@return any
function policy:run(fn) end

-- ---- http ------------------------------------------------------------------------------

---@class lcmcoord.httplib
local http = {}

---@class lcmcoord.http_options
---@field url string Absolute http or https URL (required).
---@field method string? Any method ("GET").
---@field headers table<string, string>?
---@field body string?
---@field json any Encoded as the body, with Content-Type and Accept.
---@field auth lcmcoord.auth|lcmcoord.authentication|nil Sent only to the URL's own origin.
---@field tls lcmcoord.tls?
---@field timeout number? One deadline for the request and its retries (60).
---@field retry lcmcoord.retry_policy|lcmcoord.retry_options|nil
---@field max_body integer? Largest response body accepted (1 MiB).

---One HTTP request: a response for any status, or nil and the error.
---@param options lcmcoord.http_options
---@return lcmcoord.response|nil response
---@return lcmcoord.error? err
function http.request(options) end

-- ---- log -------------------------------------------------------------------------------

---Each formats with string.format and writes one line through the engine's log: info with
----v, debug with -vv, warn and error always.
---@class lcmcoord.log
local log = {}

---@param fmt string
---@param ... any
function log.error(fmt, ...) end

---@param fmt string
---@param ... any
function log.warn(fmt, ...) end

---@param fmt string
---@param ... any
function log.info(fmt, ...) end

---@param fmt string
---@param ... any
function log.debug(fmt, ...) end

-- ---- ssh -------------------------------------------------------------------------------

---@class lcmcoord.sshlib
local sshlib = {}

---@class lcmcoord.ssh_options
---@field host string The VNFC's address or name (required).
---@field port integer? 22.
---@field user string Required.
---@field password string? Password (or keyboard-interactive) authentication.
---@field key string? Path of a private key file, tried before the password.
---@field key_password string? Passphrase of an encrypted key.
---@field host_key_sha256 string? The pinned host key fingerprint ("SHA256:...").
---@field known_hosts string? An OpenSSH known_hosts file ($HOME/.ssh/known_hosts).
---@field accept_unknown_host_key boolean? Accept an unlisted host key, with a warning.
---@field timeout number? Seconds for connecting, and the default of each exec (30).
---@field max_output integer? Bytes kept of stdout, and of stderr, per command (1 MiB).

---Connects, verifies the host key, authenticates: the session, or nil and the error.
---@param options lcmcoord.ssh_options
---@return lcmcoord.ssh|nil session
---@return lcmcoord.error? err
function sshlib.connect(options) end

---@class lcmcoord.ssh_result
---@field status integer Exit status; -1 when killed by a signal.
---@field signal string? The signal's name without SIG.
---@field stdout string
---@field stderr string
---@field stdout_truncated boolean?
---@field stderr_truncated boolean?
---@field elapsed number Seconds the command took.

---@class lcmcoord.ssh
local ssh = {}

---Runs `command` through the user's shell and waits for it, within `timeout`.
---@param command string
---@param timeout number?
---@return lcmcoord.ssh_result|nil result
---@return lcmcoord.error? err
function ssh:exec(command, timeout) end

---The server's host key fingerprint ("SHA256:...").
---@return string
function ssh:host_key_sha256() end

---Disconnects; idempotent.
function ssh:close() end

return lcmcoord
