/*
 * doctor_access.c - what another account may do with a file: the
 * permission bits of the file and of every directory above it, judged for
 * that account's uid and groups as the kernel would (owner class, else
 * group class, else others; root may do anything). ACLs are not read: a
 * deployment that needs them is beyond what doctor can judge.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "doctor.h"

int doctor_account(const char *name, struct doctor_account *out)
{
    const struct passwd *pw = getpwnam(name);
    int n = (int) (sizeof(out->da_gids) / sizeof(out->da_gids[0]));

    memset(out, 0, sizeof(*out));
    if (pw == NULL)
        return -1;
    doctor_fmt(out->da_name, sizeof(out->da_name), "%s", name);
    out->da_uid = pw->pw_uid;
    if (getgrouplist(name, pw->pw_gid, out->da_gids, &n) < 0)
        n = (int) (sizeof(out->da_gids) / sizeof(out->da_gids[0]));   /* the first ones */
    out->da_ngids = n;
    return 0;
}

/* in_group - whether A is in group GID. */
static int in_group(const struct doctor_account *a, gid_t gid)
{
    for (int i = 0; i < a->da_ngids; i++)
        if (a->da_gids[i] == gid)
            return 1;
    return 0;
}

/* class_bits - the rwx bits of SB that apply to A (shifted to 0..7). */
static unsigned class_bits(const struct doctor_account *a, const struct stat *sb,
                           const char **cls)
{
    if (sb->st_uid == a->da_uid)
        return *cls = "owner", (sb->st_mode >> 6) & 7;
    if (in_group(a, sb->st_gid))
        return *cls = "group", (sb->st_mode >> 3) & 7;
    return *cls = "others", sb->st_mode & 7;
}

/* owner_names - "user:group" of SB, for messages. */
static void owner_names(const struct stat *sb, char *out, size_t len)
{
    const struct passwd *pw = getpwuid(sb->st_uid);
    const struct group *gr = getgrgid(sb->st_gid);
    char u[32], g[32];

    doctor_fmt(u, sizeof(u), "%lu", (unsigned long) sb->st_uid);
    doctor_fmt(g, sizeof(g), "%lu", (unsigned long) sb->st_gid);
    doctor_fmt(out, len, "%s:%s", pw ? pw->pw_name : u, gr ? gr->gr_name : g);
}

/* refuse - WHY says that PATH (SB) refuses A what it WANTS. */
static int refuse(const struct doctor_account *a, const char *path, const struct stat *sb,
                  const char *wants, const char *cls, char why[DOCTOR_ERR_MAX])
{
    char owner[80];

    owner_names(sb, owner, sizeof(owner));
    doctor_fmt(why, DOCTOR_ERR_MAX, "%s (%s, mode %04o) gives %s, as %s, no %s", path, owner,
             (unsigned) (sb->st_mode & 07777), a->da_name, cls, wants);
    return 0;
}

int doctor_may(const struct doctor_account *a, const char *path, int want,
               char why[DOCTOR_ERR_MAX])
{
    char dir[DOCTOR_PATH_MAX];
    const char *cls;
    struct stat sb;
    unsigned bits;
    size_t i;

    if (a->da_uid == 0)
        return 1;
    if (path[0] != '/' || strlen(path) >= sizeof(dir)) {
        doctor_fmt(why, DOCTOR_ERR_MAX, "%s: not an absolute path", path);
        return -1;
    }
    /* Every directory from / down needs search (x) for the account. */
    for (i = 1; path[i] != '\0'; i++) {
        if (path[i] != '/')
            continue;
        memcpy(dir, path, i);
        dir[i] = '\0';
        if (stat(i == 0 ? "/" : dir, &sb) < 0) {
            doctor_fmt(why, DOCTOR_ERR_MAX, "%s: %s", dir, strerror(errno));
            return -1;
        }
        if (((bits = class_bits(a, &sb, &cls)) & 1) == 0)
            return refuse(a, dir, &sb, "search (x) permission", cls, why);
    }
    if (stat(path, &sb) < 0) {
        doctor_fmt(why, DOCTOR_ERR_MAX, "%s: %s", path, strerror(errno));
        return -1;
    }
    bits = class_bits(a, &sb, &cls);
    if ((want & R_OK) && !(bits & 4))
        return refuse(a, path, &sb, "read (r) permission", cls, why);
    if ((want & W_OK) && !(bits & 2))
        return refuse(a, path, &sb, "write (w) permission", cls, why);
    return 1;
}
