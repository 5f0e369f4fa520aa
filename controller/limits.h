/*
 * limits.h: every limit and default of canary-controller, in one place.
 *
 * Limits cap what outside input (the rollout file, the wrangler configs,
 * agents' reports) can make the controller hold. Defaults are what a rollout
 * file gets for a key it leaves out; DESIGN.md's example rollout file shows
 * the same values.
 */
#ifndef CANARY_CTL_LIMITS_H
#define CANARY_CTL_LIMITS_H

/* ---- files ---- */
#define ROLLOUT_MAX_FILE_BYTES (1024 * 1024) /* rollout file and each wrangler config */
#define ROLLOUT_PATH_LEN       4096          /* a resolved path, including the NUL */
#define ROLLOUT_NAME_LEN       128           /* var, binding and service names, tags, account ids */
#define ROLLOUT_VALUE_LEN      1024 /* a var's value (non-string vars keep their JSON text) */
#define ROLLOUT_ARG_LEN        1024 /* one argv element of a command */
#define ROLLOUT_MAX_ARGV       16   /* elements of a command (deployer.command, upload_command) */
#define ROLLOUT_MAX_MODULES    16   /* upload_modules per worker */
#define ROLLOUT_MAX_VARS       64   /* vars read from one wrangler config */
#define ROLLOUT_MAX_SERVICES   16   /* service bindings read from one wrangler config */
#define ROLLOUT_MAX_REGIONS    32
#define ROLLOUT_MAX_LINKS      8   /* agents.listen and agents.dial URLs, each */
#define ROLLOUT_FIELD_PATH_LEN 256 /* "probes.targets[3].expect_status[1]" */
#define ROLLOUT_GOT_LEN        48  /* how much of a bad value an error message quotes */
#define ROLLOUT_DATE_LEN       11  /* "YYYY-MM-DD" and the NUL */

/* ---- rollout file defaults ---- */
#define ROLLOUT_DEFAULT_PIN_VAR            "WORKER_VERSION_ID"
#define ROLLOUT_DEFAULT_DEPLOYER_TIMEOUT_S 300
#define ROLLOUT_DEFAULT_API_BASE_URL       "https://api.cloudflare.com/client/v4"
#define ROLLOUT_DEFAULT_TOKEN_ENV          "CLOUDFLARE_API_TOKEN"
#define ROLLOUT_DEFAULT_INTERVAL_S         5
#define ROLLOUT_DEFAULT_REQUESTS           20
#define ROLLOUT_DEFAULT_TIMEOUT_MS         10000
#define ROLLOUT_DEFAULT_METHOD             "GET"
#define ROLLOUT_DEFAULT_EXPECT_STATUS      200
#define ROLLOUT_DEFAULT_HEADER_MIDDLEWARE  "x-canary-middleware-version"
#define ROLLOUT_DEFAULT_HEADER_SERVER      "x-canary-server-version"
#define ROLLOUT_DEFAULT_HEADER_CACHE       "x-opennext-cache"
#define ROLLOUT_DEFAULT_VERSION_KEYS       0    /* send no Cloudflare-Workers-Version-Key */
#define ROLLOUT_DEFAULT_OVERRIDE_SHARE     50.0 /* percent of dark-step requests overridden */
#define ROLLOUT_DEFAULT_MIN_AGENTS         1
#define ROLLOUT_DEFAULT_ROUND_TIMEOUT_S    5
#define ROLLOUT_DEFAULT_STATE_DIR          ".canary"
#define ROLLOUT_DEFAULT_PROPAGATION_S      5
#define ROLLOUT_DEFAULT_BAKE_S             60
#define ROLLOUT_DEFAULT_CONVERGE_TIMEOUT_S 60
#define ROLLOUT_MAX_SECONDS                86400 /* any *_s value: one day */
#define ROLLOUT_MAX_LIMIT_COUNT            1000  /* failure_limit, inconclusive_limit */

/* ---- gate defaults ---- */
#define GATE_DEFAULT_MAX_ERROR_RATE     0.01
#define GATE_DEFAULT_MAX_P95_MS         0.0 /* 0: no absolute p95 limit */
#define GATE_DEFAULT_MAX_P99_MS         0.0 /* 0: no absolute p99 limit */
#define GATE_DEFAULT_MAX_LATENCY_RATIO  0.0 /* 0: no limit relative to the baseline */
#define GATE_DEFAULT_MIN_ISR_HIT_RATIO  0.0 /* 0: ISR hit ratio not checked */
#define GATE_DEFAULT_FAILURE_LIMIT      1
#define GATE_DEFAULT_INCONCLUSIVE_LIMIT 3
#define GATE_DEFAULT_MAX_FAILED_REGIONS 0
/* Share tolerance: |p_hat - P| <= z * sqrt(P(1-P)/n) + floor (fractions).
 * z = 3.29 is the two-sided 99.9% normal quantile, so a healthy split fails
 * about one round in a thousand; the floor absorbs the platform's own
 * rounding and tiny samples. */
#define GATE_DEFAULT_SHARE_Z     3.29
#define GATE_DEFAULT_SHARE_FLOOR 0.02

/* ---- gate ---- */
#define GATE_MAX_REGIONS      ROLLOUT_MAX_REGIONS
#define GATE_MAX_AGENTS       100000 /* distinct agent ids remembered per round */
#define GATE_MAX_FINDINGS     64     /* findings kept per verdict; the rest are counted */
#define GATE_FINDING_LEN      256
#define GATE_MAX_REJECT_NOTES 8 /* rejected reports named per round; the rest are counted */
/* A version expected on at least this many responses of a region must have
 * been seen there for the region to count as converged: with 8 expected the
 * chance of a converged region seeing none is e^-8 (0.03%). */
#define GATE_CONVERGE_MIN_EXPECTED 8.0
/* The latency ratio check also needs the quantile to exceed the baseline's
 * by this much: on a 1 ms baseline, 2 ms is jitter, not a 2x regression. */
#define GATE_RATIO_MIN_DELTA_MS 10.0

/* ---- plan ---- */
#define PLAN_MAX_STEPS     16
#define PLAN_STEP_NAME_LEN 32

#endif /* CANARY_CTL_LIMITS_H */
