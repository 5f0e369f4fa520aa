/*
 * edge_const.h: every limit and default of canary-edge, in one place.
 *
 * canary-edge is a local stand-in for Cloudflare (the REST API subset that
 * wrangler and the controller use, plus a data plane per region). Every
 * buffer that outside input can grow is capped by a constant below.
 */
#ifndef CANARY_EDGE_CONST_H
#define CANARY_EDGE_CONST_H

/* Names and ids. */
#define EDGE_UUID_LEN         37  /* 36 characters and the NUL */
#define EDGE_NAME_MAX         64  /* worker and region names, bytes with the NUL */
#define EDGE_TAG_MAX          128 /* migration tags, account ids, tokens are longer: see below */
#define EDGE_TOKEN_MAX        512
#define EDGE_PATH_MAX         512  /* an --isr path */
#define EDGE_RAY_LEN          16   /* hex digits of a cf-ray before "-REGION" */
#define EDGE_MESSAGE_MAX      1024 /* annotation values ("workers/message" is 100 on Cloudflare) */
#define EDGE_BINDING_TEXT_MAX 4096 /* the text of one plain_text binding */

/* Counts. */
#define EDGE_MAX_WORKERS         16
#define EDGE_MAX_VERSIONS        2000 /* uploads kept per worker; more are refused */
#define EDGE_DEPLOYABLE          100  /* only the newest 100 uploads can be deployed (Cloudflare) */
#define EDGE_MAX_DEPLOYMENTS     1000 /* deployment history kept per worker (oldest dropped) */
#define EDGE_MAX_BINDINGS        128  /* per version */
#define EDGE_MAX_ANNOTATIONS     16
#define EDGE_MAX_MODULES         64 /* module parts per upload */
#define EDGE_MAX_REGIONS         32
#define EDGE_MAX_ISR_PATHS       64
#define EDGE_ISR_CACHE_MAX       1024  /* cache entries per region; the oldest is evicted */
#define EDGE_TIMELINE_MAX        20000 /* timeline events kept; later ones are counted, not kept */
#define EDGE_PENDING_MAX         1000  /* deployment changes waiting for a region's delay */
#define EDGE_DEPLOY_MAX_VERSIONS 2     /* a deployment holds one or two versions */

/* Sizes. */
#define EDGE_API_MAX_BODY           (8 * 1024 * 1024) /* request body on the API listener */
#define EDGE_API_MAX_HEADERS        (64 * 1024)
#define EDGE_PLANE_MAX_BODY         (64 * 1024)
#define EDGE_PLANE_MAX_HEADERS      (32 * 1024)
#define EDGE_JSON_MAX_DEPTH         32
#define EDGE_STATE_MAX_BYTES        (256 * 1024 * 1024) /* --state file read at start */
#define EDGE_MULTIPART_MAX_PARTS    80
#define EDGE_MULTIPART_MAX_HEADER   4096 /* the header block of one part */
#define EDGE_MULTIPART_MAX_BOUNDARY 70   /* RFC 2046 */
#define EDGE_OVERRIDE_HEADER_MAX    4096

/* Defaults. */
#define EDGE_DEFAULT_MIDDLEWARE   "middleware"
#define EDGE_DEFAULT_SERVER       "main-server"
#define EDGE_DEFAULT_ACCOUNT      "" /* any account id is accepted */
#define EDGE_DEFAULT_REVALIDATE_S 30
#define EDGE_MAX_REVALIDATE_S     (365 * 24 * 3600)
#define EDGE_MAX_DELAY_MS         (10 * 60 * 1000)
#define EDGE_MAX_LATENCY_MS       (60 * 1000)
#define EDGE_SWR_S                2592000 /* stale-while-revalidate OpenNext sends on hits */
#define EDGE_AUTHOR_EMAIL         "canary-edge@localhost"

/* Headers. */
#define EDGE_H_OVERRIDES   "Cloudflare-Workers-Version-Overrides"
#define EDGE_H_VERSION_KEY "Cloudflare-Workers-Version-Key"
#define EDGE_H_MIDDLEWARE  "x-canary-middleware-version"
#define EDGE_H_SERVER      "x-canary-server-version"
#define EDGE_H_CACHE       "x-opennext-cache"
#define EDGE_H_NEXT_CACHE  "x-nextjs-cache"
#define EDGE_H_RAY         "cf-ray"

/* Bindings. */
#define EDGE_PIN_VAR "WORKER_VERSION_ID"
#define EDGE_BUILD_ID_VAR                                                                          \
	"NEXT_BUILD_ID" /* a server binding naming its build; else its version id */
#define EDGE_F_ERROR_RATE "CANARY_EDGE_ERROR_RATE"
#define EDGE_F_STATUS     "CANARY_EDGE_STATUS"
#define EDGE_F_LATENCY    "CANARY_EDGE_LATENCY_MS"
#define EDGE_F_IGNORE_PIN "CANARY_EDGE_IGNORE_PIN"
#define EDGE_F_OVERRIDE   "CANARY_EDGE_OVERRIDE_KEY"
#define EDGE_F_NO_CACHE   "CANARY_EDGE_NO_CACHE"
#define EDGE_F_REGIONS    "CANARY_EDGE_REGIONS"

/* Cloudflare API error codes the edge answers with. */
#define EDGE_CF_AUTH         10000 /* Authentication error */
#define EDGE_CF_BAD_REQUEST  10001 /* the body or a field is wrong */
#define EDGE_CF_NOT_FOUND    10007 /* unknown worker or version */
#define EDGE_CF_TOO_MANY     10021 /* a cap of the edge was reached */
#define EDGE_CF_NO_ROUTE     7000  /* No route for that URI */
#define EDGE_CF_METHOD       7001  /* Method not allowed for this route */
#define EDGE_CF_ACCOUNT      7003  /* Could not route to /accounts/..., unknown account */
#define EDGE_CF_RATE_LIMITED 971   /* injected 429 (Cloudflare's rate-limit code) */
#define EDGE_CF_INTERNAL     10013 /* the edge's own failure: memory, the state file */
#define EDGE_CF_INJECTED     10013 /* injected 5xx and other statuses */

/* Injected API failures (POST /__edge/api-faults). */
#define EDGE_API_FAULT_MAX_COUNT   1000
#define EDGE_API_FAULT_MAX_RETRY_S 3600

#endif /* CANARY_EDGE_CONST_H */
