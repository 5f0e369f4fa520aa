#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const canary_errstr[CANARY_ERR_COUNT] = {
    [CANARY_OK] = "success",
    [CANARY_ENOMEM] = "out of memory",
    [CANARY_EINVAL] = "invalid value",
    [CANARY_EPARSE] = "malformed input",
    [CANARY_EPROTO] = "unsupported protocol version or message type",
    [CANARY_ETOOBIG] = "input too large",
    [CANARY_ETOODEEP] = "input nested too deeply",
    [CANARY_ENOENT] = "not found",
    [CANARY_EIO] = "input/output error",
    [CANARY_ETIMEDOUT] = "timed out",
    [CANARY_ECLOSED] = "closed",
    [CANARY_EHTTP] = "HTTP request failed",
    [CANARY_EAPI] = "platform API error",
    [CANARY_ESPAWN] = "could not start child process",
    [CANARY_EEXIT] = "child process failed",
    [CANARY_ECONFIG] = "configuration error",
    [CANARY_ESKEW] = "would break the version skew invariant",
    [CANARY_EDRIFT] = "deployment drifted from what was applied",
    [CANARY_ELOCKED] = "locked by another process",
    [CANARY_EDENIED] = "refused by policy",
    [CANARY_ETLS] = "TLS error",
    [CANARY_ESTATE] = "not valid in the current state",
    [CANARY_ECANCELED] = "canceled",
    [CANARY_EINTERNAL] = "internal error",
};

const char *
canary_strerror(int code)
{
	if (code < 0 || code >= CANARY_ERR_COUNT || canary_errstr[code] == NULL) {
		return "unknown error";
	}
	return canary_errstr[code];
}

int
canary_errf(char *buf, size_t n, int code, const char *fmt, ...)
{
	va_list ap;

	if (buf != NULL && n > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(buf, n, fmt, ap);
		va_end(ap);
	}
	return code;
}
