"""Bridge constants: wire limits, ports, service types and timing, each with its unit.

Tests patch the timing values (as python-zeroconf's ``quick_timing`` fixture does) instead of
sleeping; the production values exist for real hosts on a real workstation. Code that reads a timing
value must read it through the module (``const.X``) at call time, so that a patch takes effect.
"""

from __future__ import annotations

# --- protocol ---------------------------------------------------------------------------------------
PROTOCOL_VERSION = 1  # integer; bumped on any incompatible change of the address table
ADDRESS_PREFIX = "/visage"  # every address we send or accept starts with this
OUTPUT_FORMAT = "ambix"  # what `done` files are: 4-channel AmbiX (ACN/SN3D) WAV

# --- sizes (bytes unless noted) ---------------------------------------------------------------------
# python-osc's socketserver UDP servers inherit socketserver.UDPServer.max_packet_size = 8192 and drop
# larger datagrams silently (hosts_and_formats.md §5.1). We read up to UDP_RECV_BYTES so that an
# oversized request is answered with `too_large` instead of vanishing.
MAX_UDP_REQUEST_BYTES = 8192
UDP_RECV_BYTES = 65535  # IPv4 UDP payload ceiling is 65507; read everything the kernel hands us
# python-osc's UDPClient.receive reads at most 4096 bytes, so no reply may be larger.
MAX_REPLY_BYTES = 4096
MAX_TCP_FRAME_BYTES = 1 << 20  # one SLIP frame on the TCP transport
TCP_RECV_CHUNK_BYTES = 4096
MAX_MESSAGES_PER_PACKET = 32  # messages in one OSC bundle
MAX_PATH_BYTES = 1024  # UTF-8 bytes of a path argument; keeps `done` (two paths) under MAX_REPLY_BYTES
MAX_OPTIONS_JSON_BYTES = 4096
MAX_JOB_ID_CHARS = 64
MAX_GROUP_CHARS = 200  # option `group` (a run's id) and `group_label`, characters each
MAX_SEED = 2**63 - 1  # the largest seed a request may carry (a signed 64-bit integer)
MAX_ERROR_MESSAGE_CHARS = 400  # error replies are truncated to this
MAX_PENDING_JOBS = 10_000  # accepted + queued + running; beyond it `generate` gets `queue_full`
MIN_TOKEN_CHARS = 16

# --- abuse limits -----------------------------------------------------------------------------------
# Error replies and refusal log lines per sender host: a peer that answers our errors (or a spoofed
# source) cannot make a loop, and a flood of bad requests cannot flood the log (rate_limit.py).
REFUSAL_BURST = 20  # refusals a sender host may get at once ...
REFUSALS_PER_S = 5.0  # ... and per second after that; beyond it they are counted, not answered or logged
MAX_TRACKED_SENDERS = 1024  # hosts the limit remembers (the least recently seen is forgotten)

# --- free space an output folder needs at submission (bytes unless noted) --------------------------
OUTPUT_BYTES_PER_SAMPLE = 4  # 32-bit float, the widest sample format a result is written in
OUTPUT_CHANNELS_WRITTEN = 6  # 4 AmbiX channels + 2 of the binaural preview
MIN_FREE_OUTPUT_BYTES = 1 << 20  # also the need of a job whose length is unknown (end = media end)

# --- ports and service types ------------------------------------------------------------------------
DEFAULT_HOST = "127.0.0.1"
# Outside the crowded defaults (8000, 9000/9001, 4001/4002, 2307) and below Linux's ephemeral range.
DEFAULT_UDP_PORT = 17730
DEFAULT_TCP_PORT = 17731
DEFAULT_WEB_PORT = 17732  # the web page (HTTP, `visage serve --web-port`)
SERVICE_TYPE_UDP = "_osc._udp.local."
SERVICE_TYPE_TCP = "_osc._tcp.local."
SERVICE_INSTANCE_PREFIX = "ViSAGe daemon"
# Loopback-only discovery. Never the default "all interfaces": multicast on eth0 is forbidden here.
LOOPBACK_INTERFACES = ("127.0.0.1",)

# --- job defaults (units in the name) ---------------------------------------------------------------
DEFAULT_GUIDANCE = 2.5
MAX_GUIDANCE = 50.0
DEFAULT_SAMPLE_RATE_HZ = 48_000
MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 192_000
MAX_YAW_DEG = 360.0  # |yaw| accepted on the wire; normalised to [-180, 180)
MAX_PITCH_DEG = 90.0
DEFAULT_MAX_BATCH = 4
BATCH_SCAN_JOBS = 256  # oldest queued jobs searched for batch partners of the oldest one
DEFAULT_MODEL = "visage"  # the released checkpoint, built by the model-side engine factory

# --- timing (seconds) -------------------------------------------------------------------------------
SERVER_POLL_INTERVAL_S = 0.1  # socketserver.serve_forever poll; bounds shutdown latency
WORKER_IDLE_WAIT_S = 0.5  # worker re-checks for work/stop at least this often
PROGRESS_MIN_INTERVAL_S = 0.1  # per job; stage changes and the final 1.0 are always sent
GRACEFUL_FINISH_S = 10.0  # on SIGINT/SIGTERM, let the running batch finish this long ...
CANCEL_GRACE_S = 5.0  # ... then cancel it (re-queued, not failed) and wait this long for the engine
THREAD_JOIN_S = 5.0  # joining server/connection threads at shutdown
TCP_SEND_TIMEOUT_S = 2.0  # a TCP client that does not read its replies for this long is dropped
SQLITE_BUSY_TIMEOUT_S = 5.0
JOB_RETENTION_S = 7 * 24 * 3600.0  # finished jobs older than this are deleted at start-up
DISCOVERY_TIMEOUT_S = 3.0  # browse; first answer on loopback measured at 0.05-1.1 s
ZEROCONF_REGISTER_TIMEOUT_S = 10.0  # probing + announcing takes ~1.5 s on loopback
RESOLVE_TIMEOUT_MS = 2000  # zeroconf get_service_info, milliseconds (zeroconf's unit)
CLIENT_RETRY_S = 0.5  # resend an unanswered request (UDP may drop it); generate is idempotent by id
CLIENT_REQUEST_TIMEOUT_S = 5.0  # give up on a request that got no reply at all
CLIENT_STATUS_POLL_S = 2.0  # while waiting, ask for status after this long without any message

# --- state folder layout ----------------------------------------------------------------------------
APP_NAME = "visage"
STATE_DB_NAME = "jobs.sqlite3"
ENDPOINT_FILE_NAME = "daemon.json"  # written once bound: pid, host, ports, model; removed on clean exit
LOCK_FILE_NAME = "daemon.lock"  # one daemon per state folder
OUTPUTS_DIR_NAME = "outputs"  # default output folder when a request names none
LOG_FILE_NAME = "daemon.log"
HASH_CHUNK_BYTES = 1 << 20
UPLOADS_DIR_NAME = "uploads"  # files sent to the web page: uploads/<uuid>/<sanitised name>

# --- web page (bridge/web) ---------------------------------------------------------------------------
DEFAULT_WEB_UPLOAD_LIMIT_BYTES = 4 << 30  # one uploaded file; `--web-upload-limit`
WEB_JOBS_LISTED = 500  # newest jobs GET /api/jobs returns
WEB_PROGRESS_MIN_INTERVAL_S = 0.2  # per job: the page gets at most ~5 progress events a second
WEB_HEARTBEAT_S = 15.0  # SSE comment line that keeps idle connections (and proxies) open
WEB_GROUP_IDLE_S = 120.0  # a group with shots still to come counts as running this long after its last change
