/*
 * err.h: the one error enum of the project and the words for each code.
 *
 * Every fallible function returns an int from this enum (0 is success) and
 * gives its results through out-parameters. Where a person needs more than
 * the code (a field path, a file position, a child's stderr), the function
 * also takes a caller-owned message buffer of CANARY_ERRLEN bytes.
 */
#ifndef CANARY_ERR_H
#define CANARY_ERR_H

#include <stddef.h>

#define CANARY_ERRLEN 512

enum canary_err {
	CANARY_OK = 0,
	CANARY_ENOMEM,    /* out of memory */
	CANARY_EINVAL,    /* invalid argument or value */
	CANARY_EPARSE,    /* malformed syntax (JSON, JSONC, HTTP, CLI output) */
	CANARY_EPROTO,    /* unknown or unsupported protocol version or message type */
	CANARY_ETOOBIG,   /* input over its size cap */
	CANARY_ETOODEEP,  /* input nested deeper than allowed */
	CANARY_ENOENT,    /* no such file, worker, version or key */
	CANARY_EIO,       /* read, write or fsync failed */
	CANARY_ETIMEDOUT, /* deadline passed */
	CANARY_ECLOSED,   /* peer or object closed */
	CANARY_EHTTP,     /* HTTP transfer failed or answered an unexpected status */
	CANARY_EAPI,      /* the platform API answered with an error envelope */
	CANARY_ESPAWN,    /* a child process could not be started */
	CANARY_EEXIT,     /* a child process exited non-zero or was killed */
	CANARY_ECONFIG,   /* configuration file or flag is wrong */
	CANARY_ESKEW,     /* a deployment or plan would break the skew invariant */
	CANARY_EDRIFT,    /* the platform no longer holds what was last applied */
	CANARY_ELOCKED,   /* another process holds the lock */
	CANARY_EDENIED,   /* refused by policy (allowlist, insecure transport) */
	CANARY_ETLS,      /* TLS set-up or certificate problem */
	CANARY_ESTATE,    /* operation not valid in the current state */
	CANARY_ECANCELED, /* stopped on request (signal) */
	CANARY_EINTERNAL, /* a bug: an invariant of the program itself was broken */
	CANARY_ERR_COUNT
};

/* canary_strerror: a static, human-readable description of code. Unknown
 * codes get "unknown error". Never returns NULL. Thread-safe. */
const char *canary_strerror(int code);

/* canary_errf: formats a message into buf (size n, may be 0) like snprintf,
 * truncating safely. Returns code, so callers can write
 * `return canary_errf(err, errlen, CANARY_EINVAL, "x: expected y");`. */
int canary_errf(char *buf, size_t n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* CANARY_ERR_H */
