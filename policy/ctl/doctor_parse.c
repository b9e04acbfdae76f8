/*
 * doctor_parse.c - the text doctor reads, as data: Postfix milter lists,
 * socket specs in the three syntaxes (libmilter's, Postfix's, Sendmail's),
 * unix paths through Postfix's chroot, and postconf's output (main.cf
 * parameters, master.cf fields and -o overrides). No I/O here.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "doctor.h"

/* ---- milter lists --------------------------------------------------------- */

/* trim - OUT is S[0..LEN) without white space around it. */
static void trim(const char *s, size_t len, char *out, size_t outlen)
{
    while (len > 0 && isspace((unsigned char) *s))
        s++, len--;
    while (len > 0 && isspace((unsigned char) s[len - 1]))
        len--;
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

/* group_entry - "{ endpoint, name=value, ... }" (braces stripped) into M. */
static int group_entry(const char *s, size_t len, struct doctor_milter *m, const char **why)
{
    char item[DOCTOR_PATH_MAX];
    size_t start = 0, i;
    int n = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && s[i] != ',')
            continue;
        trim(s + start, i - start, item, sizeof(item));
        start = i + 1;
        if (item[0] == '\0')
            continue;
        if (n++ == 0) {
            snprintf(m->dm_endpoint, sizeof(m->dm_endpoint), "%s", item);
            continue;
        }
        char *eq = strchr(item, '=');
        if (eq == NULL)
            return *why = "a { } milter entry has an attribute without '='", -1;
        char name[64];
        trim(item, (size_t) (eq - item), name, sizeof(name));
        if (strcmp(name, "default_action") == 0)
            trim(eq + 1, strlen(eq + 1), m->dm_default_action, sizeof(m->dm_default_action));
    }
    if (n == 0)
        return *why = "an empty { } milter entry", -1;
    return 0;
}

int doctor_milter_list(const char *value, struct doctor_milter *out, int max,
                       const char **why)
{
    const char *p = value;
    int n = 0;

    while (*p != '\0') {
        const char *start;

        while (*p == ',' || isspace((unsigned char) *p))
            p++;
        if (*p == '\0')
            break;
        if (n >= max)
            return *why = "too many milters in one list", -1;
        memset(&out[n], 0, sizeof(out[n]));
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (close == NULL)
                return *why = "a '{' without its '}'", -1;
            if (group_entry(p + 1, (size_t) (close - p - 1), &out[n], why) < 0)
                return -1;
            p = close + 1;
        } else {
            start = p;
            while (*p != '\0' && *p != ',' && !isspace((unsigned char) *p))
                p++;
            trim(start, (size_t) (p - start), out[n].dm_endpoint, sizeof(out[n].dm_endpoint));
        }
        n++;
    }
    return n;
}

/* ---- sockets ---------------------------------------------------------------- */

/* parse_port - a decimal port 1..65535, or -1. */
static long parse_port(const char *s, size_t len)
{
    long port = 0;

    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char) s[i]))
            return -1;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

/* set_host - HOST (LEN bytes) into OUT, without [ ] around an address. */
static int set_host(struct doctor_sock *out, const char *host, size_t len)
{
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']')
        host++, len -= 2;
    if (len >= sizeof(out->ds_host))
        return -1;
    memcpy(out->ds_host, host, len);
    out->ds_host[len] = '\0';
    return 0;
}

/* set_unix - a unix socket at PATH. */
static int set_unix(struct doctor_sock *out, const char *path)
{
    if (path[0] == '\0' || strlen(path) >= sizeof(out->ds_path))
        return -1;
    out->ds_kind = DOCTOR_SOCK_UNIX;
    snprintf(out->ds_path, sizeof(out->ds_path), "%s", path);
    return 0;
}

/* libmilter_inet - "PORT@HOST" or "PORT" (any address), kind already set. */
static int libmilter_inet(const char *rest, struct doctor_sock *out)
{
    const char *at = strchr(rest, '@');
    long port = parse_port(rest, at ? (size_t) (at - rest) : strlen(rest));

    if (port < 0)
        return -1;
    out->ds_port = (unsigned) port;
    return at ? set_host(out, at + 1, strlen(at + 1)) : 0;
}

int doctor_sock_milter(const char *spec, struct doctor_sock *out)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(spec, "unix:", 5) == 0)
        return set_unix(out, spec + 5);
    if (strncmp(spec, "local:", 6) == 0)
        return set_unix(out, spec + 6);
    if (strncmp(spec, "inet:", 5) == 0)
        return out->ds_kind = DOCTOR_SOCK_INET, libmilter_inet(spec + 5, out);
    if (strncmp(spec, "inet6:", 6) == 0)
        return out->ds_kind = DOCTOR_SOCK_INET6, libmilter_inet(spec + 6, out);
    return -1;
}

int doctor_sock_sendmail(const char *spec, struct doctor_sock *out)
{
    /* libmilter's syntax; a bare path is a unix socket (Sendmail's default). */
    if (strchr(spec, ':') == NULL) {
        memset(out, 0, sizeof(*out));
        return set_unix(out, spec);
    }
    return doctor_sock_milter(spec, out);
}

int doctor_sock_postfix(const char *endpoint, struct doctor_sock *out)
{
    const char *rest, *colon;
    long port;

    memset(out, 0, sizeof(*out));
    if (strncmp(endpoint, "unix:", 5) == 0)
        return set_unix(out, endpoint + 5);
    if (strncmp(endpoint, "inet:", 5) != 0)
        return -1;
    rest = endpoint + 5;
    if ((colon = strrchr(rest, ':')) == NULL)
        return -1;
    if ((port = parse_port(colon + 1, strlen(colon + 1))) < 0)
        return -1;
    out->ds_port = (unsigned) port;
    /* Postfix's inet: is v4 and v6 alike; doctor_sock_same compares hosts. */
    out->ds_kind = DOCTOR_SOCK_INET;
    return set_host(out, rest, (size_t) (colon - rest));
}

/* normalize - PATH without "." and ".." components and doubled slashes. */
static int normalize(char *path, size_t len)
{
    char *out = malloc(len), *w;
    const char *p = path;
    int absolute = path[0] == '/';

    if (out == NULL)
        return -1;
    w = out;
    while (*p != '\0') {
        const char *end;
        size_t n;

        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        end = strchr(p, '/');
        n = end ? (size_t) (end - p) : strlen(p);
        if (n == 1 && p[0] == '.') {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (w > out && *--w != '/')
                ;
        } else {
            if (w > out || absolute)
                *w++ = '/';
            memcpy(w, p, n);
            w += n;
        }
        p += n;
    }
    if (w == out && absolute)
        *w++ = '/';
    *w = '\0';
    memcpy(path, out, (size_t) (w - out) + 1);
    free(out);
    return 0;
}

int doctor_chroot_path(const char *path, const char *queue_dir, int chrooted, char *out,
                       size_t outlen)
{
    int n;

    /* A relative path is taken in queue_directory, chrooted or not (every
     * Postfix daemon runs there); an absolute one inside the chroot. */
    if (path[0] != '/')
        n = snprintf(out, outlen, "%s/%s", queue_dir, path);
    else if (chrooted)
        n = snprintf(out, outlen, "%s%s", queue_dir, path);
    else
        n = snprintf(out, outlen, "%s", path);
    if (n < 0 || (size_t) n >= outlen)
        return -1;
    return normalize(out, outlen);
}

int doctor_postfix_name(const char *socket, const char *queue_dir, int chrooted, char *out,
                        size_t outlen)
{
    char q[DOCTOR_PATH_MAX], s[DOCTOR_PATH_MAX];
    size_t qlen;

    snprintf(q, sizeof(q), "%s", queue_dir);
    snprintf(s, sizeof(s), "%s", socket);
    if (normalize(q, sizeof(q)) < 0 || normalize(s, sizeof(s)) < 0)
        return -1;
    qlen = strlen(q);
    if (strncmp(s, q, qlen) == 0 && s[qlen] == '/') {
        snprintf(out, outlen, "unix:%s", s + qlen + 1);
        return 0;
    }
    snprintf(out, outlen, "unix:%s", s);
    return chrooted ? -1 : 0;
}

/* any_host - an address libmilter listens on for every interface. */
static int any_host(const char *host)
{
    return host[0] == '\0' || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0
           || strcmp(host, "::") == 0 || strcmp(host, "INADDR_ANY") == 0;
}

/* loopback - the names of this host's loopback address. */
static int loopback(const char *host)
{
    return strcmp(host, "127.0.0.1") == 0 || strcasecmp(host, "localhost") == 0
           || strcmp(host, "::1") == 0;
}

int doctor_sock_same(const struct doctor_sock *milter, const struct doctor_sock *postfix)
{
    char a[DOCTOR_PATH_MAX], b[DOCTOR_PATH_MAX];

    if ((milter->ds_kind == DOCTOR_SOCK_UNIX) != (postfix->ds_kind == DOCTOR_SOCK_UNIX))
        return 0;
    if (milter->ds_kind == DOCTOR_SOCK_UNIX) {
        snprintf(a, sizeof(a), "%s", milter->ds_path);
        snprintf(b, sizeof(b), "%s", postfix->ds_path);
        if (normalize(a, sizeof(a)) < 0 || normalize(b, sizeof(b)) < 0)
            return 0;
        return strcmp(a, b) == 0;
    }
    if (milter->ds_port != postfix->ds_port)
        return 0;
    return any_host(milter->ds_host) || strcasecmp(milter->ds_host, postfix->ds_host) == 0
           || (loopback(milter->ds_host) && loopback(postfix->ds_host));
}

/* ---- postconf output --------------------------------------------------------- */

/* split_line - "NAME = VALUE" (LINE is modified); 0, or -1 when it is not one. */
static int split_line(char *line, char **name, char **value)
{
    char *eq = strstr(line, " = ");
    size_t n;

    if (eq == NULL) {
        /* "name =" with an empty value */
        n = strlen(line);
        if (n < 2 || strcmp(line + n - 2, " =") != 0)
            return -1;
        line[n - 2] = '\0';
        *name = line;
        *value = line + n;       /* the terminating NUL: "" */
        return 0;
    }
    *eq = '\0';
    *name = line;
    *value = eq + 3;
    return 0;
}

/* each_line - call FN for every "name = value" line of TEXT. */
static int each_line(struct doctor_postfix *pf, const char *text,
                     int (*fn)(struct doctor_postfix *, char *, char *))
{
    char *copy = strdup(text), *line, *save = NULL, *name, *value;
    int rc = 0;

    if (copy == NULL)
        return -1;
    for (line = strtok_r(copy, "\n", &save); line != NULL && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "postconf: ", 10) == 0 || split_line(line, &name, &value) < 0)
            continue;
        rc = fn(pf, name, value);
    }
    free(copy);
    return rc;
}

/* set_param - P is NAME = VALUE (copied). */
static int set_param(struct doctor_param *p, const char *name, const char *value)
{
    p->dp_name = strdup(name);
    p->dp_value = strdup(value);
    if (p->dp_name == NULL || p->dp_value == NULL) {
        free(p->dp_name);
        free(p->dp_value);
        return -1;
    }
    return 0;
}

static int add_param(struct doctor_postfix *pf, char *name, char *value)
{
    struct doctor_param *p = realloc(pf->pf_params, (pf->pf_nparams + 1) * sizeof(*p));

    if (p == NULL)
        return -1;
    pf->pf_params = p;
    if (set_param(&p[pf->pf_nparams], name, value) < 0)
        return -1;
    pf->pf_nparams++;
    return 0;
}

int doctor_parse_params(struct doctor_postfix *pf, const char *text)
{
    return each_line(pf, text, add_param);
}

/*
 * service_of - the service "NAME/TYPE/FIELD" names (made if new); FIELD
 * points after its slash. NULL when NAME is not that form or no memory.
 */
static struct doctor_service *service_of(struct doctor_postfix *pf, char *name, char **field)
{
    char *slash2 = strrchr(name, '/'), *slash1;
    struct doctor_service *sv;

    if (slash2 == NULL || slash2 == name)
        return NULL;
    *slash2 = '\0';
    if ((slash1 = strrchr(name, '/')) == NULL)
        return NULL;
    *slash1 = '\0';
    *field = slash2 + 1;
    for (size_t i = 0; i < pf->pf_nservices; i++)
        if (strcmp(pf->pf_services[i].ds_name, name) == 0
            && strcmp(pf->pf_services[i].ds_type, slash1 + 1) == 0)
            return &pf->pf_services[i];
    sv = realloc(pf->pf_services, (pf->pf_nservices + 1) * sizeof(*sv));
    if (sv == NULL)
        return NULL;
    pf->pf_services = sv;
    sv = &sv[pf->pf_nservices++];
    memset(sv, 0, sizeof(*sv));
    snprintf(sv->ds_name, sizeof(sv->ds_name), "%s", name);
    snprintf(sv->ds_type, sizeof(sv->ds_type), "%s", slash1 + 1);
    return sv;
}

static int add_field(struct doctor_postfix *pf, char *name, char *value)
{
    char *field;
    struct doctor_service *sv = service_of(pf, name, &field);
    size_t n;

    if (sv == NULL)
        return 0;   /* not a service field: nothing of ours */
    if (strcmp(field, "chroot") == 0)
        sv->ds_chroot = strcmp(value, "y") == 0;
    else if (strcmp(field, "command") == 0) {
        n = strcspn(value, " \t");
        if (n >= sizeof(sv->ds_command))
            n = sizeof(sv->ds_command) - 1;
        memcpy(sv->ds_command, value, n);
        sv->ds_command[n] = '\0';
    }
    return 0;
}

int doctor_parse_fields(struct doctor_postfix *pf, const char *text)
{
    return each_line(pf, text, add_field);
}

static int add_override(struct doctor_postfix *pf, char *name, char *value)
{
    char *param;
    struct doctor_service *sv = service_of(pf, name, &param);

    if (sv == NULL || sv->ds_noverrides >= DOCTOR_OVERRIDES_MAX)
        return 0;
    if (set_param(&sv->ds_overrides[sv->ds_noverrides], param, value) < 0)
        return -1;
    sv->ds_noverrides++;
    return 0;
}

int doctor_parse_overrides(struct doctor_postfix *pf, const char *text)
{
    return each_line(pf, text, add_override);
}

const char *doctor_param(const struct doctor_postfix *pf, const char *name)
{
    for (size_t i = 0; i < pf->pf_nparams; i++)
        if (strcmp(pf->pf_params[i].dp_name, name) == 0)
            return pf->pf_params[i].dp_value;
    return NULL;
}

const char *doctor_override(const struct doctor_service *sv, const char *name)
{
    for (int i = sv->ds_noverrides - 1; i >= 0; i--)   /* the last -o wins */
        if (strcmp(sv->ds_overrides[i].dp_name, name) == 0)
            return sv->ds_overrides[i].dp_value;
    return NULL;
}

const char *doctor_effective(const struct doctor_postfix *pf, const struct doctor_service *sv,
                             const char *name)
{
    const char *v = sv ? doctor_override(sv, name) : NULL;

    return v ? v : doctor_param(pf, name);
}

int doctor_has_word(const char *value, const char *word)
{
    size_t wlen = strlen(word);
    const char *p = value;

    while (p != NULL && *p != '\0') {
        size_t n;

        p += strspn(p, ", \t");
        n = strcspn(p, ", \t");
        if (n == wlen && strncasecmp(p, word, n) == 0)
            return 1;
        p += n;
    }
    return 0;
}

void doctor_postfix_free(struct doctor_postfix *pf)
{
    for (size_t i = 0; i < pf->pf_nparams; i++) {
        free(pf->pf_params[i].dp_name);
        free(pf->pf_params[i].dp_value);
    }
    for (size_t i = 0; i < pf->pf_nservices; i++)
        for (int j = 0; j < pf->pf_services[i].ds_noverrides; j++) {
            free(pf->pf_services[i].ds_overrides[j].dp_name);
            free(pf->pf_services[i].ds_overrides[j].dp_value);
        }
    free(pf->pf_params);
    free(pf->pf_services);
    memset(pf, 0, sizeof(*pf));
}
