// SPDX-License-Identifier: MIT
/*
 * daxio: the xfs_io session of one conformance script, run in one process inside the guest.
 *
 * Usage: daxio PROGRAM
 *
 * PROGRAM is written on the host by sim/kernel/program.py from the commands that
 * sim.xfsio.parse.parse_script gives: one command per line, tokens separated by one space,
 * strings percent-encoded (%XX), numbers in decimal.  The first line is
 *
 *     setup DEV MNT MOUNTOPTS
 *
 * (DEV "-" = MNT is a plain directory: no mkfs or mount, for tests on a host), then one
 * command per line, each starting with the script's line number:
 *
 *     LINE OP ARG...
 *
 * Every command prints one JSON object on stdout, one per line, flushed at once:
 *     {"line": L, "op": "pwrite", "ok": true, ...data}
 *     {"line": L, "op": "pwrite", "ok": false, "errno": "EINVAL", ...}
 * A bus error during a load/store/madvise is caught (sigsetjmp) and reported as
 * "errno": "SIGBUS" with "sigbus": {"code", "addr_lsb", "map", "path", "file_off"}.
 *
 * The semantics are xfs_io's (xfsprogs io/open.c, io/pwrite.c, io/pread.c, io/mmap.c,
 * io/reflink.c, io/prealloc.c): a file table with a current file, a mapping table with a
 * current mapping; pwrite writes in buffers of -b bytes (default the fs block size) filled
 * with the seed's low byte (default 0xcdcdcdcd); mread/mwrite touch one byte at a time in
 * order (reverse with -r); reflink with no range or an all-zero range is FICLONE, otherwise
 * FICLONERANGE; dedupe loops FIDEDUPERANGE like xfs_io's dedupe_ioctl.  Where xfs_io only
 * prints a message (a range outside the mapping, no file open) the agent reports the errno
 * that daxsim's runner (sim/xfsio/runner.py) gives the same line: EFAULT, EBADF.
 *
 * Built static on the host: gcc -static -O2 -Wall -o daxio daxio.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif

#define MAXTOK 16
#define FS_BLOCK 4096
/* Bytes of a read kept for a following "bytes" command. */
#define KEEP_READ_MAX (64L << 20)
/* FIEMAP extents reported per file at most (a self-reflinked file can have millions). */
#define MAX_EXTENTS 4096

/* ------------------------------------------------------------------ MD5 (RFC 1321) */
typedef struct {
	uint32_t a, b, c, d;
	uint64_t len;
	unsigned char buf[64];
	size_t fill;
} md5_ctx;

static const uint32_t md5_k[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
	0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
	0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
	0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
	0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
	0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
	0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
	0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
	0xeb86d391};
static const unsigned char md5_r[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7,
					 12, 17, 22, 5, 9,  14, 20, 5, 9,  14, 20, 5,
					 9,  14, 20, 5, 9,  14, 20, 4, 11, 16, 23, 4,
					 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6,
					 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6,
					 10, 15, 21};

static void md5_block(md5_ctx *c, const unsigned char *p)
{
	uint32_t w[16], a = c->a, b = c->b, cc = c->c, d = c->d;
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
		       (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
	for (int i = 0; i < 64; i++) {
		uint32_t f;
		int g;
		if (i < 16) {
			f = (b & cc) | (~b & d);
			g = i;
		} else if (i < 32) {
			f = (d & b) | (~d & cc);
			g = (5 * i + 1) & 15;
		} else if (i < 48) {
			f = b ^ cc ^ d;
			g = (3 * i + 5) & 15;
		} else {
			f = cc ^ (b | ~d);
			g = (7 * i) & 15;
		}
		uint32_t t = d;
		d = cc;
		cc = b;
		uint32_t x = a + f + md5_k[i] + w[g];
		b = b + ((x << md5_r[i]) | (x >> (32 - md5_r[i])));
		a = t;
	}
	c->a += a;
	c->b += b;
	c->c += cc;
	c->d += d;
}

static void md5_init(md5_ctx *c)
{
	c->a = 0x67452301;
	c->b = 0xefcdab89;
	c->c = 0x98badcfe;
	c->d = 0x10325476;
	c->len = 0;
	c->fill = 0;
}

static void md5_update(md5_ctx *c, const void *data, size_t n)
{
	const unsigned char *p = data;
	c->len += n;
	if (c->fill) {
		size_t k = 64 - c->fill < n ? 64 - c->fill : n;
		memcpy(c->buf + c->fill, p, k);
		c->fill += k;
		p += k;
		n -= k;
		if (c->fill == 64) {
			md5_block(c, c->buf);
			c->fill = 0;
		}
	}
	while (n >= 64) {
		md5_block(c, p);
		p += 64;
		n -= 64;
	}
	if (n) {
		memcpy(c->buf, p, n);
		c->fill = n;
	}
}

static void md5_final(md5_ctx *c, char hex[33])
{
	uint64_t bits = c->len * 8;
	unsigned char pad = 0x80, z = 0, lenb[8];
	md5_update(c, &pad, 1);
	while (c->fill != 56)
		md5_update(c, &z, 1);
	for (int i = 0; i < 8; i++)
		lenb[i] = (unsigned char)(bits >> (8 * i));
	md5_update(c, lenb, 8);
	uint32_t v[4] = {c->a, c->b, c->c, c->d};
	for (int i = 0; i < 16; i++)
		sprintf(hex + 2 * i, "%02x", (v[i / 4] >> (8 * (i % 4))) & 0xff);
	hex[32] = 0;
}

/* ------------------------------------------------------------------ state */
struct file_ent {
	int fd;
	char *path;
};
struct map_ent {
	char *addr;
	size_t length;
	long long offset; /* file offset of the first byte */
	char *path;
	int prot;
};

static struct file_ent *files;
static int nfiles, curfile = -1;
static struct map_ent *maps;
static int nmaps, curmap = -1;

static char dev[4096], mnt[4096], mountopts[4096];
static int mounted;

/* last read, for "bytes" */
static unsigned char *last_buf;
static long long last_off, last_len;
static int last_fd = -1; /* a dup of the file read, when the bytes were not kept */

/* SIGBUS catching */
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;
static siginfo_t bus_info;
static volatile int bus_count;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!bus_armed) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	bus_info = *si;
	bus_count++;
	bus_armed = 0;
	siglongjmp(bus_jmp, 1);
}

/* ------------------------------------------------------------------ output */
static char out[1 << 16];
static size_t outn;

static void emit(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + outn, sizeof(out) - outn, fmt, ap);
	va_end(ap);
	if (n > 0)
		outn += (size_t)n < sizeof(out) - outn ? (size_t)n : sizeof(out) - outn - 1;
}

static void emit_str(const char *s)
{
	emit("\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			emit("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			emit("\\u%04x", ch);
		else
			emit("%c", ch);
	}
	emit("\"");
}

static void flush_line(void)
{
	out[outn] = 0;
	fputs(out, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	outn = 0;
}

/* Large outputs (hex bytes, extents) are written straight to stdout around emit()s. */
static void flush_part(void)
{
	out[outn] = 0;
	fputs(out, stdout);
	outn = 0;
}

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "EUNKNOWN";
}

static int cur_line;
static const char *cur_op;

static void begin(void)
{
	outn = 0;
	emit("{\"line\": %d, \"op\": ", cur_line);
	emit_str(cur_op);
}

static void report_ok(void)
{
	emit(", \"ok\": true}");
	flush_line();
}

static void report_err(int e)
{
	emit(", \"ok\": false, \"errno\": \"%s\"}", errname(e));
	flush_line();
}

static void report_sigbus(void)
{
	emit(", \"ok\": false, \"errno\": \"SIGBUS\", \"sigbus\": {\"code\": %d, \"addr_lsb\": %d",
	     bus_info.si_code, (int)bus_info.si_addr_lsb);
	char *a = bus_info.si_addr;
	for (int i = 0; i < nmaps; i++) {
		if (a >= maps[i].addr && a < maps[i].addr + maps[i].length) {
			emit(", \"map\": %d, \"path\": ", i);
			emit_str(maps[i].path);
			emit(", \"file_off\": %lld", maps[i].offset + (long long)(a - maps[i].addr));
			break;
		}
	}
	emit("}}");
	flush_line();
}

static void close_all(void);
static int do_umount(void);

/* Report and stop: nothing after this line can run (no filesystem, or a program the agent
 * does not understand); mappings and files are dropped and the filesystem unmounted. */
static void fatal(const char *what, int e)
{
	outn = 0;
	begin();
	emit(", \"fatal\": ");
	emit_str(what);
	report_err(e);
	close_all();
	do_umount();
	exit(3);
}

/* ------------------------------------------------------------------ parsing */
static void pct_decode(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '%' && r[1] && r[2]) {
			char hx[3] = {r[1], r[2], 0};
			*w++ = (char)strtol(hx, NULL, 16);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
}

static long long num(const char *s)
{
	return strtoll(s, NULL, 10);
}

/* ------------------------------------------------------------------ helpers */
static void forget_read(void)
{
	free(last_buf);
	last_buf = NULL;
	last_len = 0;
	if (last_fd >= 0)
		close(last_fd);
	last_fd = -1;
}

static int md5_fd(int fd, long long off, long long len, char hex[33])
{
	static unsigned char buf[1 << 20];
	md5_ctx c;
	md5_init(&c);
	while (len > 0) {
		size_t want = len < (long long)sizeof(buf) ? (size_t)len : sizeof(buf);
		ssize_t n = pread(fd, buf, want, off);
		if (n < 0)
			return -errno;
		if (n == 0) /* past EOF: the runner's raw range reads zeros */
			break;
		md5_update(&c, buf, (size_t)n);
		off += n;
		len -= n;
	}
	/* a range past EOF hashes as zeros (daxsim's fs.md5 of a raw range) */
	memset(buf, 0, sizeof(buf));
	while (len > 0) {
		size_t k = len < (long long)sizeof(buf) ? (size_t)len : sizeof(buf);
		md5_update(&c, buf, k);
		len -= k;
	}
	md5_final(&c, hex);
	return 0;
}

static void emit_extents(int fd)
{
	size_t cnt = 256;
	struct fiemap *fm = calloc(1, sizeof(*fm) + cnt * sizeof(struct fiemap_extent));
	unsigned long long start = 0;
	int n = 0, last = 0, err = 0;
	emit(", \"extents\": [");
	while (!last && n < MAX_EXTENTS) {
		memset(fm, 0, sizeof(*fm));
		fm->fm_start = start;
		fm->fm_length = ~0ULL - start;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = cnt;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
			err = errno;
			break;
		}
		if (fm->fm_mapped_extents == 0)
			break;
		for (unsigned i = 0; i < fm->fm_mapped_extents && n < MAX_EXTENTS; i++) {
			struct fiemap_extent *e = &fm->fm_extents[i];
			emit("%s[%llu, %llu, %llu, %u]", n ? ", " : "",
			     (unsigned long long)e->fe_logical, (unsigned long long)e->fe_physical,
			     (unsigned long long)e->fe_length, e->fe_flags);
			n++;
			if (outn > sizeof(out) - 256)
				flush_part();
			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				last = 1;
			start = e->fe_logical + e->fe_length;
		}
	}
	emit("]");
	if (err)
		emit(", \"fiemap_errno\": \"%s\"", errname(err));
	if (!last && n >= MAX_EXTENTS)
		emit(", \"extents_truncated\": true");
	free(fm);
}

static int run_child(char *const argv[], char *const envp[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(2, 1); /* stdout is the report */
		if (envp)
			for (char *const *e = envp; *e; e++)
				putenv(*e);
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void close_all(void)
{
	for (int i = 0; i < nmaps; i++) {
		munmap(maps[i].addr, maps[i].length);
		free(maps[i].path);
	}
	nmaps = 0;
	curmap = -1;
	for (int i = 0; i < nfiles; i++) {
		close(files[i].fd);
		free(files[i].path);
	}
	nfiles = 0;
	curfile = -1;
	forget_read();
}

static int do_mount(void)
{
	if (!strcmp(dev, "-"))
		return 0;
	mkdir(mnt, 0755);
	if (mount(dev, mnt, "xfs", 0, strcmp(mountopts, "-") ? mountopts : NULL) < 0)
		return -errno;
	mounted = 1;
	return 0;
}

static int do_umount(void)
{
	if (chdir("/") < 0)
		return -errno;
	if (!mounted)
		return 0;
	if (umount2(mnt, 0) < 0)
		return -errno;
	mounted = 0;
	return 0;
}

static int enter_mnt(void)
{
	return chdir(mnt) < 0 ? -errno : 0;
}

static int remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char p[8192];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			remove_tree(p);
			if (rmdir(p) < 0)
				rc = -errno;
		} else if (unlink(p) < 0) {
			rc = -errno;
		}
	}
	closedir(d);
	return rc;
}

static int fill_device(int byte, long long size)
{
	int fd = open(dev, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (size <= 0) {
		unsigned long long sz = 0;
		if (ioctl(fd, BLKGETSIZE64, &sz) < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		size = (long long)sz;
	}
	static unsigned char buf[1 << 20];
	memset(buf, byte, sizeof(buf));
	long long off = 0;
	while (off < size) {
		size_t k = size - off < (long long)sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
		ssize_t n = pwrite(fd, buf, k, off);
		if (n <= 0) {
			int e = n < 0 ? errno : ENOSPC;
			close(fd);
			return -e;
		}
		off += n;
	}
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* ------------------------------------------------------------------ commands */
static int need_file(void)
{
	if (curfile < 0 || nfiles == 0) {
		report_err(EBADF);
		return 0;
	}
	return 1;
}

static int need_map(void)
{
	if (curmap < 0 || nmaps == 0) {
		report_err(EINVAL);
		return 0;
	}
	return 1;
}

/* The mapping range [off, off+len) of the current mapping, or NULL (EFAULT reported). */
static char *map_range(char **tok, int ntok, int first, long long *offp, long long *lenp)
{
	struct map_ent *m = &maps[curmap];
	long long off, len;
	if (ntok <= first || !strcmp(tok[first], "*")) {
		off = m->offset;
		len = (long long)m->length;
	} else {
		off = num(tok[first]);
		len = num(tok[first + 1]);
	}
	if (off < m->offset || off + len > m->offset + (long long)m->length) {
		report_err(EFAULT);
		return NULL;
	}
	*offp = off;
	*lenp = len;
	return m->addr + (off - m->offset);
}

static void c_open(char **t, int n)
{
	const char *fl = t[0];
	char *path = t[1];
	(void)n;
	int flags = strchr(fl, 'r') ? O_RDONLY : O_RDWR;
	if (strchr(fl, 'f'))
		flags |= O_CREAT;
	if (strchr(fl, 't'))
		flags |= O_TRUNC;
	if (strchr(fl, 'a'))
		flags |= O_APPEND;
	if (strchr(fl, 'd'))
		flags |= O_DIRECT;
	if (strchr(fl, 's'))
		flags |= O_SYNC;
	if (strchr(fl, 'n'))
		flags |= O_NONBLOCK;
	if (strchr(fl, 'T'))
		flags |= O_TMPFILE;
	int fd = open(path, flags, 0600);
	if (fd < 0) {
		report_err(errno);
		return;
	}
	files = realloc(files, sizeof(*files) * (nfiles + 1));
	files[nfiles].fd = fd;
	files[nfiles].path = strdup(path);
	curfile = nfiles++;
	emit(", \"index\": %d", curfile);
	report_ok();
}

static void c_close(void)
{
	if (!need_file())
		return;
	close(files[curfile].fd);
	free(files[curfile].path);
	memmove(&files[curfile], &files[curfile + 1], sizeof(*files) * (nfiles - curfile - 1));
	nfiles--;
	if (curfile >= nfiles)
		curfile = nfiles - 1;
	report_ok();
}

static void c_file(char **t, int n)
{
	if (n >= 1) {
		int i = (int)num(t[0]);
		if (i < 0 || i >= nfiles) {
			report_err(EINVAL);
			return;
		}
		curfile = i;
		report_ok();
		return;
	}
	emit(", \"files\": [");
	for (int i = 0; i < nfiles; i++) {
		emit(i ? ", " : "");
		emit_str(files[i].path);
	}
	emit("], \"current\": %d", curfile);
	report_ok();
}

/* pwrite SEED BSIZE FLAGS OFF LEN  (FLAGS: letters of w W B, or "-") */
static void c_pwrite(char **t, int n)
{
	(void)n;
	if (!need_file())
		return;
	unsigned long seed = strtoul(t[0], NULL, 10);
	long long bs = num(t[1]);
	const char *fl = t[2];
	long long off = num(t[3]), count = num(t[4]);
	int fd = files[curfile].fd;
	if (bs <= 0) {
		report_err(EINVAL);
		return;
	}
	char *buf = aligned_alloc(4096, (bs + 4095) / 4096 * 4096);
	if (!buf) {
		report_err(ENOMEM);
		return;
	}
	memset(buf, (int)(seed & 0xff), bs);
	long long total = 0;
	int ops = 0, err = 0;
	if (strchr(fl, 'B')) { /* write_backward */
		long long end, o = off, cnt = count;
		if ((end = o - cnt) < 0) {
			cnt += end;
			end = 0;
		}
		long long req = o % bs;
		if (req) {
			req = req < cnt ? req : cnt;
			o -= req;
			ssize_t b = pwrite(fd, buf, req, o);
			if (b < 0)
				err = errno;
			else {
				ops++;
				total += b;
				cnt -= b;
			}
		}
		while (!err && cnt > end) {
			req = cnt < bs ? cnt : bs;
			o -= req;
			ssize_t b = pwrite(fd, buf, req, o);
			if (b < 0) {
				err = errno;
				break;
			}
			if (b == 0)
				break;
			ops++;
			total += b;
			if (b < req)
				break;
			cnt -= b;
		}
	} else { /* write_buffer */
		while (count >= 0) {
			long long k = count < bs ? count : bs;
			ssize_t b = pwrite(fd, buf, k, off);
			if (b == 0)
				break;
			if (b < 0) {
				err = errno;
				break;
			}
			ops++;
			total += b;
			if (b < k)
				break;
			off += b;
			count -= b;
			if (count == 0)
				break;
		}
	}
	free(buf);
	if (!err && strchr(fl, 'W') && fsync(fd) < 0)
		err = errno;
	if (!err && strchr(fl, 'w') && fdatasync(fd) < 0)
		err = errno;
	emit(", \"bytes\": %lld, \"ops\": %d", total, ops);
	if (err)
		report_err(err);
	else
		report_ok();
}

/* pread BSIZE OFF LEN */
static void c_pread(char **t, int n)
{
	(void)n;
	if (!need_file())
		return;
	long long bs = num(t[0]), off = num(t[1]), count = num(t[2]);
	int fd = files[curfile].fd;
	forget_read();
	if (bs <= 0) {
		report_err(EINVAL);
		return;
	}
	char *buf = malloc(bs);
	int keep = count <= KEEP_READ_MAX;
	if (keep)
		last_buf = malloc(count > 0 ? count : 1);
	long long total = 0, o = off;
	int err = 0;
	while (count > 0) {
		long long k = count < bs ? count : bs;
		ssize_t b = pread(fd, buf, k, o);
		if (b < 0) {
			err = errno;
			break;
		}
		if (b == 0)
			break;
		if (keep)
			memcpy(last_buf + total, buf, b);
		total += b;
		o += b;
		count -= b;
		if (b < k)
			break;
	}
	free(buf);
	last_off = off;
	last_len = total;
	if (!keep)
		last_fd = dup(fd);
	emit(", \"bytes\": %lld", total);
	if (err)
		report_err(err);
	else
		report_ok();
}

static void c_truncate(char **t)
{
	if (!need_file())
		return;
	if (ftruncate(files[curfile].fd, num(t[0])) < 0)
		report_err(errno);
	else
		report_ok();
}

/* falloc MODE OFF LEN  (MODE: fallocate(2) mode bits, computed on the host) */
static void c_falloc(char **t)
{
	if (!need_file())
		return;
	if (fallocate(files[curfile].fd, (int)num(t[0]), num(t[1]), num(t[2])) < 0)
		report_err(errno);
	else
		report_ok();
}

/* reflink SRC SOFF DOFF LEN */
static void c_reflink(char **t)
{
	if (!need_file())
		return;
	int sfd = open(t[0], O_RDONLY);
	if (sfd < 0) {
		report_err(errno);
		return;
	}
	long long soff = num(t[1]), doff = num(t[2]), len = num(t[3]);
	int rc;
	if (soff == 0 && doff == 0 && len == 0) { /* xfs_io reflink_ioctl: XFS_IOC_CLONE */
		rc = ioctl(files[curfile].fd, FICLONE, sfd);
	} else {
		struct file_clone_range a = {.src_fd = sfd,
					     .src_offset = (uint64_t)soff,
					     .src_length = (uint64_t)len,
					     .dest_offset = (uint64_t)doff};
		rc = ioctl(files[curfile].fd, FICLONERANGE, &a);
	}
	int e = errno;
	close(sfd);
	if (rc < 0)
		report_err(e);
	else
		report_ok();
}

/* dedupe SRC SOFF DOFF LEN: xfs_io's dedupe_ioctl loop */
static void c_dedupe(char **t)
{
	if (!need_file())
		return;
	int sfd = open(t[0], O_RDONLY);
	if (sfd < 0) {
		report_err(errno);
		return;
	}
	struct file_dedupe_range *a =
		calloc(1, sizeof(*a) + sizeof(struct file_dedupe_range_info));
	a->src_offset = (uint64_t)num(t[1]);
	a->src_length = (uint64_t)num(t[3]);
	a->dest_count = 1;
	a->info[0].dest_fd = files[curfile].fd;
	a->info[0].dest_offset = (uint64_t)num(t[2]);
	long long deduped = 0;
	int ops = 0, err = 0;
	while (a->src_length > 0 || !ops) {
		if (ioctl(sfd, FIDEDUPERANGE, a) < 0) {
			err = errno;
			break;
		}
		if (a->info[0].status < 0) {
			err = -a->info[0].status;
			break;
		}
		if (a->info[0].status == FILE_DEDUPE_RANGE_DIFFERS) {
			err = EBADE; /* xfs_io: "Extents did not match." */
			break;
		}
		if (a->src_length != 0 && (a->info[0].bytes_deduped == 0 ||
					   a->info[0].bytes_deduped > a->src_length))
			break;
		ops++;
		a->src_offset += a->info[0].bytes_deduped;
		a->info[0].dest_offset += a->info[0].bytes_deduped;
		if (a->src_length >= a->info[0].bytes_deduped)
			a->src_length -= a->info[0].bytes_deduped;
		deduped += (long long)a->info[0].bytes_deduped;
	}
	close(sfd);
	free(a);
	emit(", \"deduped\": %lld, \"ops\": %d", deduped, ops);
	if (err)
		report_err(err);
	else
		report_ok();
}

/* mmap PROT SYNC RESERVE OFF LEN
 *
 * Where a mapping lies decides whether the kernel tries a PMD fault for it: __handle_mm_fault
 * calls the huge fault while the 2 MiB region's PMD is none (no page table yet), and
 * dax_iomap_pmd_fault falls back (traced as FALLBACK) when the 2 MiB range is outside the
 * VMA. So every mapping goes at a fixed place of its own, as daxsim places it
 * (DaxFS.mmap): from the start of a fresh 2 MiB region plus the PMD colour of its file
 * offset, with a free region after it, in an area nothing else of the process uses.
 * RESERVE (xfs_io's -s) is accepted and has no effect on the place. */
static unsigned long long next_va = 0x100000000000ULL; /* 16 TiB: 2 MiB aligned */

static void c_mmap(char **t)
{
	if (!need_file())
		return;
	int prot = (int)num(t[0]);
	int flags = num(t[1]) ? (MAP_SYNC | MAP_SHARED_VALIDATE) : MAP_SHARED;
	long long off = num(t[3]), len = num(t[4]);
	unsigned long long pmd = 2ULL << 20;
	unsigned long long va = next_va + (((unsigned long long)off / 4096) & 511) * 4096;
	void *addr = mmap((void *)va, len, prot, flags | MAP_FIXED_NOREPLACE, files[curfile].fd, off);
	if (addr != MAP_FAILED) /* past the mapping's last page, then one free region */
		next_va = ((va + ((unsigned long long)len + 4095) / 4096 * 4096) / pmd + 2) * pmd;
	if (addr == MAP_FAILED) {
		report_err(errno);
		return;
	}
	maps = realloc(maps, sizeof(*maps) * (nmaps + 1));
	maps[nmaps] = (struct map_ent){addr, (size_t)len, off, strdup(files[curfile].path), prot};
	curmap = nmaps++;
	emit(", \"index\": %d", curmap);
	report_ok();
}

static void c_mapsel(char **t)
{
	int i = (int)num(t[0]);
	if (i < 0 || i >= nmaps) {
		report_err(EINVAL);
		return;
	}
	curmap = i;
	report_ok();
}

/* mread FLAGS OFF LEN (FLAGS letters r v or "-"; OFF "*" = the whole mapping) */
static void c_mread(char **t, int n)
{
	if (!need_map())
		return;
	long long off, len;
	volatile char *p = (volatile char *)map_range(t, n, 1, &off, &len);
	if (!p)
		return;
	forget_read();
	int rev = strchr(t[0], 'r') != NULL;
	last_buf = malloc(len > 0 ? len : 1);
	last_off = off;
	last_len = len;
	bus_armed = 1;
	if (sigsetjmp(bus_jmp, 1)) {
		report_sigbus();
		return;
	}
	if (rev)
		for (long long i = len - 1; i >= 0; i--)
			last_buf[i] = p[i];
	else
		for (long long i = 0; i < len; i++)
			last_buf[i] = p[i];
	bus_armed = 0;
	report_ok();
}

/* mwrite FLAGS SEED OFF LEN */
static void c_mwrite(char **t, int n)
{
	if (!need_map())
		return;
	long long off, len;
	volatile char *p = (volatile char *)map_range(t, n, 2, &off, &len);
	if (!p)
		return;
	char seed = (char)strtol(t[1], NULL, 10);
	int rev = strchr(t[0], 'r') != NULL;
	if (!(maps[curmap].prot & PROT_WRITE)) { /* the store would be a SIGSEGV */
		report_err(EACCES);
		return;
	}
	bus_armed = 1;
	if (sigsetjmp(bus_jmp, 1)) {
		report_sigbus();
		return;
	}
	if (rev)
		for (long long i = len - 1; i >= 0; i--)
			p[i] = seed;
	else
		for (long long i = 0; i < len; i++)
			p[i] = seed;
	bus_armed = 0;
	report_ok();
}

/* msync FLAGS OFF LEN (FLAGS: the msync(2) flags as a number) */
static void c_msync(char **t, int n)
{
	if (!need_map())
		return;
	long long off, len;
	char *p = map_range(t, n, 1, &off, &len);
	if (!p)
		return;
	if (msync(p, len, (int)num(t[0])) < 0)
		report_err(errno);
	else
		report_ok();
}

static void c_munmap(void)
{
	if (!need_map())
		return;
	int rc = munmap(maps[curmap].addr, maps[curmap].length);
	if (rc < 0) {
		report_err(errno);
		return;
	}
	free(maps[curmap].path);
	memmove(&maps[curmap], &maps[curmap + 1], sizeof(*maps) * (nmaps - curmap - 1));
	nmaps--;
	if (curmap >= nmaps)
		curmap = nmaps - 1;
	report_ok();
}

static void c_hwpoison(char **t, int n)
{
	if (!need_map())
		return;
	long long off, len;
	char *p = map_range(t, n, 0, &off, &len);
	if (!p)
		return;
	bus_count = 0;
	bus_armed = 1;
	if (sigsetjmp(bus_jmp, 1)) {
		emit(", \"madvise\": 0");
		report_sigbus();
		return;
	}
	int rc = madvise(p, len, MADV_HWPOISON);
	int e = errno;
	bus_armed = 0;
	emit(", \"madvise\": %d, \"sigbus\": null", rc < 0 ? e : 0);
	if (rc < 0)
		report_err(e);
	else
		report_ok();
}

static void c_fsync(int data)
{
	if (!need_file())
		return;
	if ((data ? fdatasync(files[curfile].fd) : fsync(files[curfile].fd)) < 0)
		report_err(errno);
	else
		report_ok();
}

static void c_stat(void)
{
	if (!need_file())
		return;
	struct stat st;
	if (fstat(files[curfile].fd, &st) < 0) {
		report_err(errno);
		return;
	}
	emit(", \"ino\": %llu, \"size\": %lld, \"blocks\": %lld", (unsigned long long)st.st_ino,
	     (long long)st.st_size, (long long)st.st_blocks);
	report_ok();
}

static void emit_md5_of(int fd, long long off, long long len)
{
	char hex[33];
	int rc = md5_fd(fd, off, len, hex);
	if (rc < 0) {
		report_err(-rc);
		return;
	}
	emit(", \"md5\": \"%s\"", hex);
	report_ok();
}

static void c_md5sum(void)
{
	if (!need_file())
		return;
	struct stat st;
	if (fstat(files[curfile].fd, &st) < 0) {
		report_err(errno);
		return;
	}
	emit(", \"size\": %lld", (long long)st.st_size);
	emit_md5_of(files[curfile].fd, 0, st.st_size);
}

/* md5 PATH [OFF LEN]: whole file (with its size) or a raw range */
static void c_md5(char **t, int n)
{
	int fd = open(t[0], O_RDONLY);
	if (fd < 0) {
		report_err(errno);
		return;
	}
	struct stat st;
	fstat(fd, &st);
	if (n >= 3) {
		emit_md5_of(fd, num(t[1]), num(t[2]));
	} else {
		emit(", \"size\": %lld", (long long)st.st_size);
		emit_md5_of(fd, 0, st.st_size);
	}
	close(fd);
}

/* Compare [oa, oa+len) of a with [ob, ob+len) of b; bytes past EOF read as zeros. */
static int cmp_fds(int a, long long oa, int b, long long ob, long long len, int *same)
{
	static unsigned char ba[1 << 20], bb[1 << 20];
	*same = 1;
	while (len > 0) {
		size_t k = len < (long long)sizeof(ba) ? (size_t)len : sizeof(ba);
		ssize_t na = pread(a, ba, k, oa), nb = pread(b, bb, k, ob);
		if (na < 0 || nb < 0)
			return -errno;
		memset(ba + na, 0, k - na);
		memset(bb + nb, 0, k - nb);
		if (memcmp(ba, bb, k)) {
			*same = 0;
			return 0;
		}
		oa += k;
		ob += k;
		len -= k;
	}
	return 0;
}

/* cmp A B: whole files (sizes and bytes, as cmp -s); range A OFFA B OFFB LEN */
static void c_cmp(char **t, int n, int ranged)
{
	(void)n;
	int a = open(t[0], O_RDONLY);
	if (a < 0) {
		report_err(errno);
		return;
	}
	int b = open(ranged ? t[2] : t[1], O_RDONLY);
	if (b < 0) {
		int e = errno;
		close(a);
		report_err(e);
		return;
	}
	int same = 0, rc;
	if (ranged) {
		rc = cmp_fds(a, num(t[1]), b, num(t[3]), num(t[4]), &same);
	} else {
		struct stat sa, sb;
		fstat(a, &sa);
		fstat(b, &sb);
		if (sa.st_size != sb.st_size) {
			rc = 0;
			same = 0;
		} else {
			rc = cmp_fds(a, 0, b, 0, sa.st_size, &same);
		}
	}
	close(a);
	close(b);
	if (rc < 0) {
		report_err(-rc);
		return;
	}
	emit(", \"same\": %s", same ? "true" : "false");
	report_ok();
}

/* bytes OFF N: the bytes of the last read at file offset OFF (hex), for @expect_bytes */
static void c_bytes(char **t)
{
	long long off = num(t[0]), cnt = num(t[1]);
	long long rel = off - last_off;
	emit(", \"hex\": \"");
	if (rel >= 0 && rel < last_len) {
		long long k = last_len - rel < cnt ? last_len - rel : cnt;
		unsigned char *src = NULL, *tmp = NULL;
		if (last_buf) {
			src = last_buf + rel;
		} else if (last_fd >= 0) {
			tmp = malloc(k > 0 ? k : 1);
			ssize_t r = pread(last_fd, tmp, k, off);
			k = r < 0 ? 0 : r;
			src = tmp;
		} else {
			k = 0;
		}
		for (long long i = 0; i < k; i++) {
			emit("%02x", src[i]);
			if (outn > sizeof(out) - 64)
				flush_part();
		}
		free(tmp);
	}
	emit("\"");
	report_ok();
}

static void c_fiemap(char **t)
{
	int fd = open(t[0], O_RDONLY);
	if (fd < 0) {
		report_err(errno);
		return;
	}
	struct stat st;
	fstat(fd, &st);
	emit(", \"size\": %lld", (long long)st.st_size);
	emit_extents(fd);
	close(fd);
	report_ok();
}

static void c_statfs(void)
{
	struct statfs s;
	if (statfs(".", &s) < 0) {
		report_err(errno);
		return;
	}
	emit(", \"bsize\": %lld, \"blocks\": %lld, \"free_blocks\": %lld, \"avail_blocks\": %lld",
	     (long long)s.f_bsize, (long long)s.f_blocks, (long long)s.f_bfree,
	     (long long)s.f_bavail);
	report_ok();
}

/* mkfs SIZE FILL: SIZE 0 = the whole device; FILL -1 = no pre-fill */
static void c_mkfs(char **t)
{
	long long size = num(t[0]);
	int fill = (int)num(t[1]);
	int rc;
	close_all();
	if (!strcmp(dev, "-")) { /* a plain directory: a fresh, empty one */
		mkdir(mnt, 0755);
		if ((rc = remove_tree(mnt)) < 0 || (rc = enter_mnt()) < 0)
			fatal("cannot empty the directory", -rc);
		report_ok();
		return;
	}
	if ((rc = do_umount()) < 0)
		fatal("cannot unmount", -rc);
	umount2(mnt, 0); /* left mounted by an agent that stopped: not ours to keep */
	if (fill >= 0 && (rc = fill_device(fill, size)) < 0)
		fatal("cannot fill the device", -rc);
	char dopt[128];
	if (size > 0)
		snprintf(dopt, sizeof(dopt), "su=2m,sw=1,size=%lld", size);
	else
		snprintf(dopt, sizeof(dopt), "su=2m,sw=1");
	/* mkfs.xfs refuses a filesystem under 300 MB unless run as by xfstests */
	char *argv[] = {"mkfs.xfs", "-f", "-q", "-m", "reflink=1,rmapbt=1", "-d", dopt, dev, NULL};
	char *envp[] = {"TEST_DEV=/dev/null", "TEST_DIR=/tmp", "QA_CHECK_FS=xfs", NULL};
	rc = run_child(argv, envp);
	if (rc != 0)
		fatal("mkfs.xfs failed", rc < 0 ? -rc : EIO);
	if ((rc = do_mount()) < 0 || (rc = enter_mnt()) < 0)
		fatal("cannot mount", -rc);
	report_ok();
}

static void c_cycle(void)
{
	close_all();
	sync();
	int rc = do_umount();
	if (rc == 0)
		rc = do_mount();
	if (rc == 0)
		rc = enter_mnt();
	if (rc < 0)
		fatal("cannot cycle the mount", -rc);
	report_ok();
}

static void c_unlink(char **t)
{
	if (unlink(t[0]) < 0)
		report_err(errno);
	else
		report_ok();
}

/* final MAXBYTES: size, md5 (files up to MAXBYTES) and FIEMAP of every file */
static void c_final(char **t)
{
	long long maxb = num(t[0]);
	DIR *d = opendir(".");
	if (!d) {
		report_err(errno);
		return;
	}
	struct dirent *de;
	char **names = NULL;
	int nn = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		names = realloc(names, sizeof(*names) * (nn + 1));
		names[nn++] = strdup(de->d_name);
	}
	closedir(d);
	for (int i = 0; i < nn; i++)
		for (int j = i + 1; j < nn; j++)
			if (strcmp(names[i], names[j]) > 0) {
				char *x = names[i];
				names[i] = names[j];
				names[j] = x;
			}
	emit(", \"files\": [");
	int shown = 0;
	for (int i = 0; i < nn; i++) {
		struct stat st;
		if (lstat(names[i], &st) < 0 || !S_ISREG(st.st_mode)) {
			free(names[i]);
			continue;
		}
		int fd = open(names[i], O_RDONLY);
		emit("%s{\"path\": ", shown++ ? ", " : "");
		emit_str(names[i]);
		emit(", \"ino\": %llu, \"size\": %lld", (unsigned long long)st.st_ino,
		     (long long)st.st_size);
		if (fd >= 0) {
			char hex[33];
			if (st.st_size <= maxb && md5_fd(fd, 0, st.st_size, hex) == 0)
				emit(", \"md5\": \"%s\"", hex);
			else
				emit(", \"md5\": null");
			emit_extents(fd);
			close(fd);
		}
		emit("}");
		flush_part();
		free(names[i]);
	}
	free(names);
	emit("]");
	report_ok();
}

/* pause NAME: the host reads the page state; wait for one byte on /dev/ttyS1 */
static void c_pause(char **t)
{
	int fd = open("/dev/ttyS1", O_RDWR | O_NOCTTY);
	if (fd < 0) {
		report_err(errno);
		return;
	}
	struct termios tio;
	if (tcgetattr(fd, &tio) == 0) {
		cfmakeraw(&tio);
		tio.c_cc[VMIN] = 1;
		tio.c_cc[VTIME] = 0;
		tcsetattr(fd, TCSANOW, &tio);
	}
	char msg[8192];
	int k = snprintf(msg, sizeof(msg), "DAXSIM-PAUSE %s\n", t[0]);
	if (write(fd, msg, k) != k) {
		int e = errno;
		close(fd);
		report_err(e);
		return;
	}
	char c;
	ssize_t r = read(fd, &c, 1);
	int e = errno;
	close(fd);
	if (r != 1)
		report_err(r < 0 ? e : EIO);
	else
		report_ok();
}

static void c_umount(void)
{
	close_all();
	int rc = do_umount();
	if (rc < 0)
		report_err(-rc);
	else
		report_ok();
}

/* ------------------------------------------------------------------ main */
int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: daxio PROGRAM\n");
		return 2;
	}
	FILE *prog = fopen(argv[1], "r");
	if (!prog) {
		perror(argv[1]);
		return 2;
	}
	struct sigaction sa = {0};
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);

	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int setup_done = 0;
	while ((len = getline(&line, &cap, prog)) >= 0) {
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (!len)
			continue;
		char *tok[MAXTOK];
		int n = 0;
		for (char *s = strtok(line, " "); s && n < MAXTOK; s = strtok(NULL, " "))
			tok[n++] = s;
		for (int i = 0; i < n; i++)
			pct_decode(tok[i]);
		if (!setup_done) {
			if (n != 4 || strcmp(tok[0], "setup")) {
				fprintf(stderr, "daxio: the program must start with: setup DEV MNT OPTS\n");
				return 2;
			}
			snprintf(dev, sizeof(dev), "%s", tok[1]);
			snprintf(mnt, sizeof(mnt), "%s", tok[2]);
			snprintf(mountopts, sizeof(mountopts), "%s", tok[3]);
			setup_done = 1;
			continue;
		}
		if (n < 2) {
			fprintf(stderr, "daxio: bad program line\n");
			return 2;
		}
		cur_line = (int)num(tok[0]);
		cur_op = tok[1];
		char **a = tok + 2;
		int na = n - 2;
		begin();
		const char *op = cur_op;
		if (!strcmp(op, "open") && na == 2)
			c_open(a, na);
		else if (!strcmp(op, "close"))
			c_close();
		else if (!strcmp(op, "file"))
			c_file(a, na);
		else if (!strcmp(op, "pwrite") && na == 5)
			c_pwrite(a, na);
		else if (!strcmp(op, "pread") && na == 3)
			c_pread(a, na);
		else if (!strcmp(op, "truncate") && na == 1)
			c_truncate(a);
		else if (!strcmp(op, "falloc") && na == 3)
			c_falloc(a);
		else if (!strcmp(op, "reflink") && na == 4)
			c_reflink(a);
		else if (!strcmp(op, "dedupe") && na == 4)
			c_dedupe(a);
		else if (!strcmp(op, "mmap") && na == 5)
			c_mmap(a);
		else if (!strcmp(op, "mapsel") && na == 1)
			c_mapsel(a);
		else if (!strcmp(op, "mread") && (na == 2 || na == 3))
			c_mread(a, na);
		else if (!strcmp(op, "mwrite") && (na == 3 || na == 4))
			c_mwrite(a, na);
		else if (!strcmp(op, "msync") && (na == 2 || na == 3))
			c_msync(a, na);
		else if (!strcmp(op, "munmap"))
			c_munmap();
		else if (!strcmp(op, "hwpoison") && na == 2)
			c_hwpoison(a, na);
		else if (!strcmp(op, "fsync"))
			c_fsync(0);
		else if (!strcmp(op, "fdatasync"))
			c_fsync(1);
		else if (!strcmp(op, "stat"))
			c_stat();
		else if (!strcmp(op, "md5sum"))
			c_md5sum();
		else if (!strcmp(op, "md5") && (na == 1 || na == 3))
			c_md5(a, na);
		else if (!strcmp(op, "cmp") && na == 2)
			c_cmp(a, na, 0);
		else if (!strcmp(op, "range") && na == 5)
			c_cmp(a, na, 1);
		else if (!strcmp(op, "bytes") && na == 2)
			c_bytes(a);
		else if (!strcmp(op, "fiemap") && na == 1)
			c_fiemap(a);
		else if (!strcmp(op, "statfs"))
			c_statfs();
		else if (!strcmp(op, "mkfs") && na == 2)
			c_mkfs(a);
		else if (!strcmp(op, "cycle"))
			c_cycle();
		else if (!strcmp(op, "sync")) {
			sync();
			report_ok();
		} else if (!strcmp(op, "unlink") && na == 1)
			c_unlink(a);
		else if (!strcmp(op, "final") && na == 1)
			c_final(a);
		else if (!strcmp(op, "pause") && na == 1)
			c_pause(a);
		else if (!strcmp(op, "umount"))
			c_umount();
		else
			fatal("unknown program command or wrong argument count", EINVAL);
	}
	free(line);
	return 0;
}
