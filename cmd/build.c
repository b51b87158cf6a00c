/* kiln build: docker build's flags -> struct build_request -> engine_build. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/progress.h"
#include "engine/engine.h"
#include "layers/refs.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

static void usage(FILE *f)
{
    fputs("Usage: kiln build [OPTIONS] PATH | URL | -\n\n"
          "Build an image from a Dockerfile, as an ordinary user.\n\n"
          "Options:\n"
          "  -t, --tag NAME[:TAG]          name the image (repeatable)\n"
          "  -f, --file FILE               the Dockerfile (default PATH/Dockerfile; '-' = stdin)\n"
          "      --build-arg K[=V]         set a build-time variable (repeatable)\n"
          "      --target STAGE            build up to this stage\n"
          "      --no-cache                do not use the build cache\n"
          "      --pull                    re-resolve base images from their registries\n"
          "      --label K=V               add a label to the image (repeatable)\n"
          "      --iidfile FILE            write the image id to FILE\n"
          "  -q, --quiet                   print only the image id\n"
          "      --secret id=ID[,src=FILE|,env=VAR]  expose a secret to RUN --mount=type=secret\n"
          "      --ssh default|ID=PATH     expose an SSH agent socket or keys to RUN --mount=type=ssh\n"
          "      --progress auto|tty|plain|quiet\n"
          "  -o, --output type=local,dest=DIR | type=tar,dest=FILE | type=oci,dest=FILE |\n"
          "               type=docker,dest=FILE   export the result (default: the store)\n"
          "      --build-context NAME=DIR|docker-image://REF   extra named contexts\n"
          "      --timestamp SECONDS       clamp times in the image (as SOURCE_DATE_EPOCH)\n"
          "      --network default|none|host  network for RUN (default: the host's)\n"
          "      --add-host HOST:IP        add a line to /etc/hosts in RUN (repeatable)\n"
          "      --shm-size SIZE           size of /dev/shm in RUN (default 64m)\n"
          "      --ulimit NAME=SOFT[:HARD] resource limits for RUN (repeatable)\n"
          "      --compression gzip|zstd|none  layer compression (default gzip)\n"
          "      --compression-level N\n"
          "      --platform linux/ARCH     must be the build machine's platform\n"
          "      --security-opt seccomp=unconfined|PROFILE.json\n"
          "      --cache-from type=registry,ref=REF | type=local,src=DIR\n"
          "      --cache-to type=registry,ref=REF[,mode=min|max] | type=local,dest=DIR\n"
          "      --userns auto|range|single  identity mapping (default auto)\n"
          "      --storage-driver auto|overlay|fuse-overlayfs|copy\n"
          "      --root DIR                the store (default $XDG_DATA_HOME/kiln)\n"
          "  -h, --help                    this help\n",
          f);
}

enum {
    OPT_BUILD_ARG = 0x100,
    OPT_TARGET,
    OPT_NO_CACHE,
    OPT_PULL,
    OPT_LABEL,
    OPT_IIDFILE,
    OPT_SECRET,
    OPT_SSH,
    OPT_PROGRESS,
    OPT_BUILD_CONTEXT,
    OPT_TIMESTAMP,
    OPT_NETWORK,
    OPT_ADD_HOST,
    OPT_SHM_SIZE,
    OPT_ULIMIT,
    OPT_COMPRESSION,
    OPT_COMPRESSION_LEVEL,
    OPT_PLATFORM,
    OPT_SECURITY_OPT,
    OPT_CACHE_FROM,
    OPT_CACHE_TO,
};

/* "a=b,c=d" -> value of key (NULL if absent); *ok = false on a bad field. */
static char *csv_get(const char *csv, const char *key)
{
    size_t kl = strlen(key);
    const char *p = csv;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > kl && strncmp(p, key, kl) == 0 && p[kl] == '=')
            return xstrndup(p + kl + 1, n - kl - 1);
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

/* Checks that every field of a csv is one of the allowed keys. */
static const char *csv_unknown_key(const char *csv, const char *const *allowed)
{
    static char bad[128];
    const char *p = csv;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t kl = eq ? (size_t)(eq - p) : n;
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strlen(allowed[i]) == kl && strncmp(allowed[i], p, kl) == 0)
                ok = true;
        if (!ok) {
            snprintf(bad, sizeof(bad), "%.*s", (int)(kl < 100 ? kl : 100), p);
            return bad;
        }
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

static int parse_secret(const char *arg, struct build_request *r)
{
    static const char *const keys[] = {"id", "src", "source", "env", "type", "required", NULL};
    const char *bad = csv_unknown_key(arg, keys);
    if (bad)
        return cli_usage_error("build", "--secret: unknown field '%s' in '%s'", bad, arg);
    struct build_secret s = {0};
    s.id = csv_get(arg, "id");
    s.src = csv_get(arg, "src");
    if (!s.src)
        s.src = csv_get(arg, "source");
    s.env = csv_get(arg, "env");
    _cleanup_free_ char *type = csv_get(arg, "type");
    if (!s.id || !*s.id) {
        free(s.id);
        free(s.src);
        free(s.env);
        return cli_usage_error("build", "--secret needs an id: '%s'", arg);
    }
    if (type && strcmp(type, "env") == 0 && !s.env && s.src) {
        s.env = s.src;
        s.src = NULL;
    }
    if (!s.src && !s.env) {
        if (getenv(s.id))
            s.env = xstrdup(s.id);
        else
            s.src = NULL;
    }
    r->secrets = xreallocarray(r->secrets, r->n_secrets + 1, sizeof(*r->secrets));
    r->secrets[r->n_secrets++] = s;
    return 0;
}

static int parse_ssh(const char *arg, struct build_request *r)
{
    struct build_ssh s = {0};
    const char *eq = strchr(arg, '=');
    s.id = eq ? xstrndup(arg, (size_t)(eq - arg)) : xstrdup(arg);
    s.paths = strv_new();
    if (eq) {
        _cleanup_free_ char *list = xstrdup(eq + 1);
        char *save = NULL;
        for (char *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save))
            strv_push(&s.paths, p);
    }
    if (!*s.id) {
        free(s.id);
        strv_free(s.paths);
        return cli_usage_error("build", "--ssh: empty id in '%s'", arg);
    }
    r->ssh = xreallocarray(r->ssh, r->n_ssh + 1, sizeof(*r->ssh));
    r->ssh[r->n_ssh++] = s;
    return 0;
}

static int parse_output(const char *arg, struct build_request *r)
{
    struct build_output o = {0};
    if (!strchr(arg, '=')) {
        /* "-o DIR" is type=local; "-o -" is a tar on stdout */
        o.type = strcmp(arg, "-") == 0 ? OUTPUT_TAR : OUTPUT_LOCAL;
        o.dest = xstrdup(arg);
    } else {
        static const char *const keys[] = {"type", "dest", "name", NULL};
        const char *bad = csv_unknown_key(arg, keys);
        if (bad)
            return cli_usage_error("build", "--output: unknown field '%s' in '%s'", bad, arg);
        _cleanup_free_ char *type = csv_get(arg, "type");
        o.dest = csv_get(arg, "dest");
        o.name = csv_get(arg, "name");
        if (!type || strcmp(type, "local") == 0)
            o.type = OUTPUT_LOCAL;
        else if (strcmp(type, "tar") == 0)
            o.type = OUTPUT_TAR;
        else if (strcmp(type, "oci") == 0)
            o.type = OUTPUT_OCI;
        else if (strcmp(type, "docker") == 0)
            o.type = OUTPUT_DOCKER;
        else if (strcmp(type, "image") == 0)
            o.type = OUTPUT_IMAGE;
        else {
            free(o.dest);
            free(o.name);
            return cli_usage_error("build", "--output: unknown type '%s' (local, tar, oci, docker)",
                                   type);
        }
        if (o.type != OUTPUT_IMAGE && (!o.dest || !*o.dest)) {
            free(o.dest);
            free(o.name);
            return cli_usage_error("build", "--output: '%s' needs dest=", arg);
        }
    }
    r->outputs = xreallocarray(r->outputs, r->n_outputs + 1, sizeof(*r->outputs));
    r->outputs[r->n_outputs++] = o;
    return 0;
}

static int parse_ulimit(const char *arg, struct build_request *r)
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        return cli_usage_error("build", "--ulimit: expected NAME=SOFT[:HARD], got '%s'", arg);
    char *end = NULL;
    errno = 0;
    unsigned long long soft = strtoull(eq + 1, &end, 10), hard = soft;
    if (errno || end == eq + 1 || (*end && *end != ':'))
        return cli_usage_error("build", "--ulimit: bad value in '%s'", arg);
    if (*end == ':') {
        const char *h = end + 1;
        hard = strtoull(h, &end, 10);
        if (errno || end == h || *end)
            return cli_usage_error("build", "--ulimit: bad hard limit in '%s'", arg);
    }
    if (soft > hard)
        return cli_usage_error("build", "--ulimit: soft limit above hard limit in '%s'", arg);
    _cleanup_free_ char *name = xstrndup(arg, (size_t)(eq - arg));
    if (ulimit_from_name(name) < 0)
        return cli_usage_error("build", "--ulimit: unknown limit '%s'", name);
    struct build_ulimit u = {xstrndup(arg, (size_t)(eq - arg)), soft, hard};
    r->ulimits = xreallocarray(r->ulimits, r->n_ulimits + 1, sizeof(*r->ulimits));
    r->ulimits[r->n_ulimits++] = u;
    return 0;
}

static int parse_cache_spec(const char *flag, const char *arg, struct cache_spec **arr, size_t *n)
{
    static const char *const keys[] = {"type", "ref", "src", "dest", "mode",
                                       "oci-mediatypes", "image-manifest", "compression", NULL};
    struct cache_spec c = {0};
    if (!strchr(arg, '=')) {
        c.type = xstrdup("registry");
        c.ref = xstrdup(arg);
    } else {
        const char *bad = csv_unknown_key(arg, keys);
        if (bad)
            return cli_usage_error("build", "%s: unknown field '%s' in '%s'", flag, bad, arg);
        c.type = csv_get(arg, "type");
        if (!c.type)
            c.type = xstrdup("registry");
        c.ref = csv_get(arg, "ref");
        c.dir = csv_get(arg, strcmp(flag, "--cache-from") == 0 ? "src" : "dest");
        c.mode = csv_get(arg, "mode");
    }
    bool ok = (strcmp(c.type, "registry") == 0 && c.ref && *c.ref) ||
              (strcmp(c.type, "local") == 0 && c.dir && *c.dir);
    if (ok && c.mode && strcmp(c.mode, "min") != 0 && strcmp(c.mode, "max") != 0)
        ok = false;
    if (!ok) {
        free(c.type);
        free(c.ref);
        free(c.dir);
        free(c.mode);
        return cli_usage_error("build",
                               "%s: expected type=registry,ref=REF or type=local,%s=DIR "
                               "(mode=min|max), got '%s'",
                               flag, strcmp(flag, "--cache-from") == 0 ? "src" : "dest", arg);
    }
    *arr = xreallocarray(*arr, *n + 1, sizeof(**arr));
    (*arr)[(*n)++] = c;
    return 0;
}

int cmd_build(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tag", required_argument, NULL, 't'},
        {"file", required_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {"build-arg", required_argument, NULL, OPT_BUILD_ARG},
        {"target", required_argument, NULL, OPT_TARGET},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"pull", no_argument, NULL, OPT_PULL},
        {"label", required_argument, NULL, OPT_LABEL},
        {"iidfile", required_argument, NULL, OPT_IIDFILE},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"ssh", required_argument, NULL, OPT_SSH},
        {"progress", required_argument, NULL, OPT_PROGRESS},
        {"build-context", required_argument, NULL, OPT_BUILD_CONTEXT},
        {"timestamp", required_argument, NULL, OPT_TIMESTAMP},
        {"network", required_argument, NULL, OPT_NETWORK},
        {"add-host", required_argument, NULL, OPT_ADD_HOST},
        {"shm-size", required_argument, NULL, OPT_SHM_SIZE},
        {"ulimit", required_argument, NULL, OPT_ULIMIT},
        {"compression", required_argument, NULL, OPT_COMPRESSION},
        {"compression-level", required_argument, NULL, OPT_COMPRESSION_LEVEL},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"security-opt", required_argument, NULL, OPT_SECURITY_OPT},
        {"cache-from", required_argument, NULL, OPT_CACHE_FROM},
        {"cache-to", required_argument, NULL, OPT_CACHE_TO},
        CLI_GLOBAL_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct build_request req;
    build_request_init(&req);
    int rc = 0;
    int c;
    optind = 1;
    opterr = 0;
    const char *e = getenv("SOURCE_DATE_EPOCH");
    if (e && *e) {
        char *end = NULL;
        long long v = strtoll(e, &end, 10);
        if (*end || v < 0) {
            rc = cli_usage_error("build", "SOURCE_DATE_EPOCH: not a number of seconds: '%s'", e);
            goto out;
        }
        req.timestamp = v;
    }
    while ((c = getopt_long(argc, argv, "t:f:qo:h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            strv_push(&req.tags, optarg);
            break;
        case 'f':
            free(req.dockerfile);
            req.dockerfile = xstrdup(optarg);
            break;
        case 'q':
            req.quiet = true;
            break;
        case 'o':
            if ((rc = parse_output(optarg, &req)))
                goto out;
            break;
        case 'h':
            usage(stdout);
            goto out;
        case OPT_BUILD_ARG:
            if (!*optarg || optarg[0] == '=') {
                rc = cli_usage_error("build", "--build-arg: missing name in '%s'", optarg);
                goto out;
            }
            if (!strchr(optarg, '=')) {
                /* --build-arg K takes the value from the environment, or is dropped */
                const char *v = getenv(optarg);
                if (!v)
                    break;
                strv_push_take(&req.build_args, xasprintf("%s=%s", optarg, v));
            } else {
                strv_push(&req.build_args, optarg);
            }
            break;
        case OPT_TARGET:
            free(req.target);
            req.target = xstrdup(optarg);
            break;
        case OPT_NO_CACHE:
            req.no_cache = true;
            break;
        case OPT_PULL:
            req.pull = true;
            break;
        case OPT_LABEL:
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                rc = cli_usage_error("build", "--label: expected K=V, got '%s'", optarg);
                goto out;
            }
            strv_push(&req.labels, optarg);
            break;
        case OPT_IIDFILE:
            free(req.iidfile);
            req.iidfile = xstrdup(optarg);
            break;
        case OPT_SECRET:
            if ((rc = parse_secret(optarg, &req)))
                goto out;
            break;
        case OPT_SSH:
            if ((rc = parse_ssh(optarg, &req)))
                goto out;
            break;
        case OPT_PROGRESS:
            if (strcmp(optarg, "auto") == 0)
                req.progress = PROGRESS_AUTO;
            else if (strcmp(optarg, "tty") == 0)
                req.progress = PROGRESS_TTY;
            else if (strcmp(optarg, "plain") == 0)
                req.progress = PROGRESS_PLAIN;
            else if (strcmp(optarg, "quiet") == 0)
                req.progress = PROGRESS_QUIET;
            else {
                rc = cli_usage_error("build", "--progress: expected auto, tty, plain or quiet, "
                                              "got '%s'", optarg);
                goto out;
            }
            break;
        case OPT_BUILD_CONTEXT: {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1]) {
                rc = cli_usage_error("build", "--build-context: expected NAME=VALUE, got '%s'",
                                     optarg);
                goto out;
            }
            req.contexts = xreallocarray(req.contexts, req.n_contexts + 1, sizeof(*req.contexts));
            req.contexts[req.n_contexts].name = xstrndup(optarg, (size_t)(eq - optarg));
            req.contexts[req.n_contexts].value = xstrdup(eq + 1);
            req.n_contexts++;
            break;
        }
        case OPT_TIMESTAMP: {
            char *end = NULL;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 0) {
                rc = cli_usage_error("build", "--timestamp: not a number of seconds: '%s'",
                                     optarg);
                goto out;
            }
            req.timestamp = v;
            break;
        }
        case OPT_NETWORK:
            if (strcmp(optarg, "default") != 0 && strcmp(optarg, "none") != 0 &&
                strcmp(optarg, "host") != 0) {
                rc = cli_usage_error("build", "--network: expected default, none or host, "
                                              "got '%s'", optarg);
                goto out;
            }
            free(req.network);
            req.network = xstrdup(optarg);
            break;
        case OPT_ADD_HOST: {
            const char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg || !colon[1]) {
                rc = cli_usage_error("build", "--add-host: expected HOST:IP, got '%s'", optarg);
                goto out;
            }
            strv_push(&req.add_hosts, optarg);
            break;
        }
        case OPT_SHM_SIZE:
            if (cli_parse_size(optarg, &req.shm_size) < 0 || req.shm_size == 0) {
                rc = cli_usage_error("build", "--shm-size: bad size '%s'", optarg);
                goto out;
            }
            break;
        case OPT_ULIMIT:
            if ((rc = parse_ulimit(optarg, &req)))
                goto out;
            break;
        case OPT_COMPRESSION:
            if (strcmp(optarg, "gzip") == 0)
                req.compression = COMPRESSION_GZIP;
            else if (strcmp(optarg, "zstd") == 0)
                req.compression = COMPRESSION_ZSTD;
            else if (strcmp(optarg, "none") == 0 || strcmp(optarg, "uncompressed") == 0)
                req.compression = COMPRESSION_NONE;
            else {
                rc = cli_usage_error("build", "--compression: expected gzip, zstd or none, "
                                              "got '%s'", optarg);
                goto out;
            }
            break;
        case OPT_COMPRESSION_LEVEL: {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 0 || v > 22) {
                rc = cli_usage_error("build", "--compression-level: expected 0-22, got '%s'",
                                     optarg);
                goto out;
            }
            req.compression_level = (int)v;
            break;
        }
        case OPT_PLATFORM:
            free(req.platform);
            req.platform = xstrdup(optarg);
            break;
        case OPT_SECURITY_OPT:
            if (strncmp(optarg, "seccomp=", 8) != 0 || !optarg[8]) {
                rc = cli_usage_error("build", "--security-opt: expected seccomp=unconfined or "
                                              "seccomp=PROFILE.json, got '%s'", optarg);
                goto out;
            }
            strv_push(&req.security_opts, optarg);
            break;
        case OPT_CACHE_FROM:
            if ((rc = parse_cache_spec("--cache-from", optarg, &req.cache_from,
                                       &req.n_cache_from)))
                goto out;
            break;
        case OPT_CACHE_TO:
            if ((rc = parse_cache_spec("--cache-to", optarg, &req.cache_to, &req.n_cache_to)))
                goto out;
            break;
        default:
            if (!cli_global_opt(c, optarg)) {
                rc = cli_bad_option("build", argv);
                goto out;
            }
        }
    }
    if (optind >= argc) {
        rc = cli_usage_error("build", "requires exactly 1 argument: the context (PATH, URL or -)");
        goto out;
    }
    if (argc - optind > 1) {
        rc = cli_usage_error("build", "requires exactly 1 argument, got %d", argc - optind);
        goto out;
    }
    req.context = xstrdup(argv[optind]);
    if (strcmp(req.context, "-") == 0 && req.dockerfile && strcmp(req.dockerfile, "-") == 0) {
        rc = cli_usage_error("build", "the context and the Dockerfile cannot both come from stdin");
        goto out;
    }
    for (size_t i = 0; req.tags && req.tags[i]; i++) {
        _cleanup_free_ char *norm = NULL;
        struct kiln_error *terr = NULL;
        if (store_ref_name(req.tags[i], &norm, &terr) < 0) {
            rc = cli_usage_error("build", "invalid tag '%s': %s", req.tags[i], terr->msg);
            kiln_error_free(&terr);
            goto out;
        }
    }
    if (req.quiet)
        req.progress = PROGRESS_QUIET;
    req.store_root = g_opts.root ? xstrdup(g_opts.root) : store_default_root();
    if (g_opts.storage_driver && driver_from_name(g_opts.storage_driver, &req.storage_driver) < 0) {
        rc = cli_usage_error("build", "--storage-driver: expected auto, overlay, fuse-overlayfs "
                                      "or copy, got '%s'", g_opts.storage_driver);
        goto out;
    }

    struct kiln_error *err = NULL;
    if (cli_enter_namespaces(&err) < 0) {
        rc = cli_fail(&err);
        goto out;
    }
    struct progress *p = progress_new(req.progress);
    struct build_result res = {0};
    int r = engine_build(&req, progress_callbacks(p), &res, &err);
    progress_finish(p, r == 0);
    if (r < 0) {
        progress_free(p);
        rc = cli_fail(&err);
        goto out;
    }
    progress_free(p);
    /* -q and --progress=quiet: the image id, and nothing else */
    if (req.quiet || req.progress == PROGRESS_QUIET)
        printf("%s\n", res.image_id);
    if (req.iidfile) {
        int w = fs_write_atomic_at(AT_FDCWD, req.iidfile, res.image_id, strlen(res.image_id),
                                   0644, false);
        if (w < 0) {
            kiln_error_set(&err, -w, "write --iidfile '%s'", req.iidfile);
            rc = cli_fail(&err);
        }
    }
    free(res.manifest.media_type);
out:
    build_request_free(&req);
    return rc;
}
