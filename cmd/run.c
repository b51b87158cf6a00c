/* kiln run: run a command in an image from the store, like `docker run --rm`.
 * The container's changes are thrown away when it exits. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "layers/driver.h"
#include "layers/image.h"
#include "layers/lowerfs.h"
#include "layers/refs.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "runtime/runtime.h"

static void usage(FILE *f)
{
    fputs("Usage: kiln run [OPTIONS] IMAGE [COMMAND [ARG...]]\n\n"
          "Run a command in a new container made from an image of the store; its\n"
          "changes are discarded when it exits.  The exit code is the command's.\n\n"
          "Options:\n"
          "      --rm                  remove the container afterwards (always done)\n"
          "  -i, --interactive         keep stdin open\n"
          "  -t, --tty                 allocate a pseudo-terminal\n"
          "  -e, --env K=V             set an environment variable (K alone: from ours)\n"
          "      --env-file FILE       read K=V lines\n"
          "  -v, --volume HOST:CTR[:ro]  bind a host path\n"
          "  -w, --workdir DIR         working directory inside\n"
          "  -u, --user USER[:GROUP]   user inside (names from the image's passwd)\n"
          "      --network host|none   network (default host)\n"
          "      --entrypoint CMD      override the image's entrypoint\n"
          "      --hostname NAME       hostname inside\n"
          "      --security-opt seccomp=unconfined|PROFILE.json\n"
          "  -h, --help                this help\n",
          f);
}

static int add_env(char ***env, const char *kv)
{
    const char *eq = strchr(kv, '=');
    _cleanup_free_ char *key = eq ? xstrndup(kv, (size_t)(eq - kv)) : xstrdup(kv);
    if (!*key)
        return -1;
    char *entry;
    if (eq) {
        entry = xstrdup(kv);
    } else {
        const char *v = getenv(key);
        if (!v)
            return 0; /* docker drops a name that is not set */
        entry = xasprintf("%s=%s", key, v);
    }
    size_t kl = strlen(key);
    for (size_t i = 0; (*env)[i]; i++) {
        if (strncmp((*env)[i], key, kl) == 0 && (*env)[i][kl] == '=') {
            free((*env)[i]);
            (*env)[i] = entry;
            return 0;
        }
    }
    strv_push_take(env, entry);
    return 0;
}

static int read_env_file(char ***env, const char *path, struct kiln_error **err)
{
    _cleanup_free_ char *buf = NULL;
    int r = fs_read_file_at(AT_FDCWD, path, 1 << 20, &buf, NULL);
    if (r < 0)
        return kiln_error_set(err, -r, "--env-file '%s'", path);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        if (!*line || *line == '#')
            continue;
        if (add_env(env, line) < 0)
            return kiln_error_set(err, 0, "--env-file '%s': bad line '%s'", path, line);
    }
    return 0;
}

struct volume {
    char *host, *ctr;
    bool ro;
};

struct run_options {
    bool interactive, tty;
    char **extra_env;
    char **env_files;
    const struct volume *vols;
    size_t n_vols;
    const char *workdir, *user, *entrypoint, *hostname;
    enum run_network network;
    enum seccomp_mode seccomp;
    const char *seccomp_profile;
};

/* Docker's rule: --entrypoint replaces the image's entrypoint and drops its
 * CMD; arguments after the image replace CMD. */
static char **container_argv(const struct image_config *cfg, const char *entrypoint,
                             char **args, int n_args)
{
    char **argv = strv_new();
    if (entrypoint) {
        if (*entrypoint)
            strv_push(&argv, entrypoint);
    } else {
        for (size_t i = 0; cfg->entrypoint && cfg->entrypoint[i]; i++)
            strv_push(&argv, cfg->entrypoint[i]);
    }
    if (n_args > 0) {
        for (int i = 0; i < n_args; i++)
            strv_push(&argv, args[i]);
    } else if (!entrypoint) {
        for (size_t i = 0; cfg->cmd && cfg->cmd[i]; i++)
            strv_push(&argv, cfg->cmd[i]);
    }
    return argv;
}

static int write_hosts_files(struct store *s, const char *hostname, char **ret_dir,
                             struct kiln_error **err)
{
    if (store_mkdtemp(s, "run", ret_dir, err) < 0)
        return -1;
    _cleanup_free_ char *hosts = xasprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                                           "ip6-loopback\n127.0.1.1\t%s\n",
                                           hostname);
    _cleanup_free_ char *hp = path_join(*ret_dir, "hosts");
    _cleanup_free_ char *rp = path_join(*ret_dir, "resolv.conf");
    int r = fs_write_atomic_at(AT_FDCWD, hp, hosts, strlen(hosts), 0644, false);
    char *resolv = NULL;
    size_t len = 0;
    if (r == 0 && fs_read_file_at(AT_FDCWD, "/etc/resolv.conf", 1 << 20, &resolv, &len) < 0) {
        resolv = xstrdup("");
        len = 0;
    }
    if (r == 0)
        r = fs_write_atomic_at(AT_FDCWD, rp, resolv, len, 0644, false);
    free(resolv);
    if (r < 0)
        return kiln_error_set(err, -r, "write /etc/hosts and /etc/resolv.conf for the container");
    return 0;
}

static int run_image(const char *image_name, char **args, int n_args,
                     const struct run_options *o)
{
    struct kiln_error *err = NULL;
    struct store *s = NULL;
    struct image img = {0};
    bool have_img = false;
    char **trees = NULL;
    struct rootfs *rootfs = NULL;
    struct run_user u = {0};
    char **env = NULL, **argv = NULL;
    char *tmpdir = NULL, *hosts = NULL, *resolv = NULL;
    struct run_mount *mounts = NULL;
    int status = KILN_EXIT_RUN_FAILED;

    if (cli_open_store(&s, &err) < 0 || cli_hold_gc_lock(s, &err) < 0)
        goto fail;
    struct descriptor desc;
    if (store_resolve(s, image_name, &desc, NULL, &err) < 0)
        goto fail;
    int r = image_load(s, &desc, &img, &err);
    descriptor_free(&desc);
    if (r < 0)
        goto fail;
    have_img = true;
    size_t n = img.manifest.n_layers;
    trees = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        if (store_tree_ensure(s, &img.manifest.layers[n - 1 - i], img.config.diff_ids[n - 1 - i],
                              &trees[i], &err) < 0)
            goto fail;

    /* the user and its home come from the image's own passwd and group */
    struct lowerfs lfs;
    if (lowerfs_init(&lfs, trees, n, &err) < 0)
        goto fail;
    char *passwd = NULL, *group = NULL;
    size_t len;
    if (lowerfs_read_file(&lfs, "/etc/passwd", 16 << 20, &passwd, &len) < 0)
        passwd = NULL;
    if (lowerfs_read_file(&lfs, "/etc/group", 16 << 20, &group, &len) < 0)
        group = NULL;
    lowerfs_close(&lfs);
    const char *user = o->user ? o->user : img.config.user;
    r = runtime_user_resolve_db(passwd, group, user && *user ? user : "0", &u, &err);
    free(passwd);
    free(group);
    if (r < 0)
        goto fail;

    env = strv_copy(img.config.env ? img.config.env : (char *[]){NULL});
    if (!env)
        env = strv_new();
    for (size_t i = 0; o->env_files[i]; i++)
        if (read_env_file(&env, o->env_files[i], &err) < 0)
            goto fail;
    for (size_t i = 0; o->extra_env[i]; i++)
        add_env(&env, o->extra_env[i]);
    bool has_home = false, has_path = false;
    for (size_t i = 0; env[i]; i++) {
        has_home |= strncmp(env[i], "HOME=", 5) == 0;
        has_path |= strncmp(env[i], "PATH=", 5) == 0;
    }
    if (!has_path)
        strv_push(&env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    if (!has_home)
        strv_push_take(&env, xasprintf("HOME=%s", u.home));
    if (o->tty)
        add_env(&env, "TERM=xterm");

    argv = container_argv(&img.config, o->entrypoint, args, n_args);
    if (!argv[0]) {
        kiln_error_set(&err, 0, "no command specified: the image has no CMD or ENTRYPOINT");
        goto fail;
    }
    enum storage_driver driver;
    if (cli_storage_driver(s, &driver, &err) < 0)
        goto fail;
    if (rootfs_mount(s, driver, trees, &rootfs, &err) < 0)
        goto fail;
    const char *hostname = o->hostname ? o->hostname : "kiln";
    if (write_hosts_files(s, hostname, &tmpdir, &err) < 0)
        goto fail;
    hosts = path_join(tmpdir, "hosts");
    resolv = path_join(tmpdir, "resolv.conf");
    mounts = xcalloc(o->n_vols + 1, sizeof(*mounts));
    for (size_t i = 0; i < o->n_vols; i++)
        mounts[i] = (struct run_mount){.type = RUN_MOUNT_BIND,
                                       .source = o->vols[i].host,
                                       .target = o->vols[i].ctr,
                                       .readonly = o->vols[i].ro};
    const char *cwd = o->workdir ? o->workdir
                                 : (img.config.working_dir && *img.config.working_dir
                                        ? img.config.working_dir
                                        : "/");
    struct run_spec spec = {
        .rootfs = rootfs->merged,
        .argv = argv,
        .env = env,
        .cwd = cwd,
        .uid = u.uid,
        .gid = u.gid,
        .groups = u.groups,
        .n_groups = u.n_groups,
        .hostname = hostname,
        .network = o->network,
        .mounts = mounts,
        .n_mounts = o->n_vols,
        .hosts_file = hosts,
        .resolv_file = resolv,
        .seccomp = o->seccomp,
        .seccomp_profile = o->seccomp_profile,
        .stdin_fd = o->interactive ? STDIN_FILENO : -1,
        .stdout_fd = -1,
        .stderr_fd = -1,
        .tty = o->tty,
        .forward_signals = true,
    };
    int code = 0;
    if (runtime_run(&spec, &code, &err) < 0)
        goto fail;
    status = code;
    goto out;
fail:
    status = err && err->status ? err->status : KILN_EXIT_RUN_FAILED;
    /* as docker run: 126 and 127 are the command's, 128+N an interruption;
     * anything else kept the container from starting (no such image, ...) */
    if (status != KILN_EXIT_NOT_EXEC && status != KILN_EXIT_NOT_FOUND && status <= 128)
        status = KILN_EXIT_RUN_FAILED;
    if (err)
        err->status = status;
    cli_fail(&err);
out:
    rootfs_release(rootfs);
    if (tmpdir)
        fs_rm_rf(tmpdir);
    free(tmpdir);
    free(hosts);
    free(resolv);
    free(mounts);
    strv_free(env);
    strv_free(argv);
    strv_free(trees);
    run_user_free(&u);
    if (have_img)
        image_free(&img);
    store_close(s);
    return status;
}

int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"rm", no_argument, NULL, 'R'},
        {"interactive", no_argument, NULL, 'i'},
        {"tty", no_argument, NULL, 't'},
        {"env", required_argument, NULL, 'e'},
        {"env-file", required_argument, NULL, 'E'},
        {"volume", required_argument, NULL, 'v'},
        {"workdir", required_argument, NULL, 'w'},
        {"user", required_argument, NULL, 'u'},
        {"network", required_argument, NULL, 'N'},
        {"entrypoint", required_argument, NULL, 'P'},
        {"hostname", required_argument, NULL, 'H'},
        {"security-opt", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        CLI_GLOBAL_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    bool interactive = false, tty = false;
    char **extra_env = strv_new();
    char **env_files = strv_new();
    struct volume *vols = NULL;
    size_t n_vols = 0;
    const char *workdir = NULL, *user = NULL, *entrypoint = NULL, *hostname = NULL;
    enum run_network net = NET_HOST;
    enum seccomp_mode seccomp = SECCOMP_DEFAULT;
    const char *seccomp_profile = NULL;
    int rc = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+ite:v:w:u:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'R':
            break;
        case 'i':
            interactive = true;
            break;
        case 't':
            tty = true;
            break;
        case 'e':
            if (!*optarg || optarg[0] == '=') {
                rc = cli_usage_error("run", "--env: bad value '%s'", optarg);
                goto out;
            }
            strv_push(&extra_env, optarg);
            break;
        case 'E':
            strv_push(&env_files, optarg);
            break;
        case 'v': {
            _cleanup_free_ char *spec = xstrdup(optarg);
            char *ctr = strchr(spec, ':');
            if (!ctr || ctr == spec || !ctr[1]) {
                rc = cli_usage_error("run", "--volume: expected HOST:CTR[:ro], got '%s'", optarg);
                goto out;
            }
            *ctr++ = '\0';
            char *opt = strchr(ctr, ':');
            bool ro = false;
            if (opt) {
                *opt++ = '\0';
                if (strcmp(opt, "ro") == 0)
                    ro = true;
                else if (strcmp(opt, "rw") != 0) {
                    rc = cli_usage_error("run", "--volume: unknown option '%s'", opt);
                    goto out;
                }
            }
            if (ctr[0] != '/') {
                rc = cli_usage_error("run", "--volume: '%s' is not an absolute path", ctr);
                goto out;
            }
            char *abs = realpath(spec, NULL);
            if (!abs) {
                rc = cli_usage_error("run", "--volume: '%s': %s", spec, strerror(errno));
                goto out;
            }
            vols = xreallocarray(vols, n_vols + 1, sizeof(*vols));
            vols[n_vols++] = (struct volume){abs, xstrdup(ctr), ro};
            break;
        }
        case 'w':
            workdir = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'N':
            if (strcmp(optarg, "host") == 0 || strcmp(optarg, "default") == 0)
                net = NET_HOST;
            else if (strcmp(optarg, "none") == 0)
                net = NET_NONE;
            else {
                rc = cli_usage_error("run", "--network: expected host or none, got '%s'", optarg);
                goto out;
            }
            break;
        case 'P':
            entrypoint = optarg;
            break;
        case 'H':
            hostname = optarg;
            break;
        case 'S':
            if (strcmp(optarg, "seccomp=unconfined") == 0)
                seccomp = SECCOMP_UNCONFINED;
            else if (strncmp(optarg, "seccomp=", 8) == 0 && optarg[8]) {
                seccomp = SECCOMP_PROFILE;
                seccomp_profile = optarg + 8;
            } else {
                rc = cli_usage_error("run", "--security-opt: expected seccomp=unconfined or "
                                            "seccomp=PROFILE.json");
                goto out;
            }
            break;
        case 'h':
            usage(stdout);
            goto out;
        default:
            if (!cli_global_opt(c, optarg)) {
                rc = cli_bad_option("run", argv);
                goto out;
            }
        }
    }
    if (optind >= argc) {
        rc = cli_usage_error("run", "requires at least 1 argument: the image");
        goto out;
    }
    const char *image_name = argv[optind];
    char **cmd_args = argv + optind + 1;
    int n_cmd_args = argc - optind - 1;

    struct kiln_error *err = NULL;
    if (cli_enter_namespaces(&err) < 0) {
        rc = cli_fail(&err);
        if (rc == KILN_EXIT_FAILURE)
            rc = KILN_EXIT_RUN_FAILED;
        goto out;
    }
    struct run_options opts = {
        .interactive = interactive,
        .tty = tty,
        .extra_env = extra_env,
        .env_files = env_files,
        .vols = vols,
        .n_vols = n_vols,
        .workdir = workdir,
        .user = user,
        .entrypoint = entrypoint,
        .hostname = hostname,
        .network = net,
        .seccomp = seccomp,
        .seccomp_profile = seccomp_profile,
    };
    rc = run_image(image_name, cmd_args, n_cmd_args, &opts);
out:
    strv_free(extra_env);
    strv_free(env_files);
    for (size_t i = 0; i < n_vols; i++) {
        free(vols[i].host);
        free(vols[i].ctr);
    }
    free(vols);
    return rc;
}
