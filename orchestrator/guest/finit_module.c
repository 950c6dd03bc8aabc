/* kto-insmod: load a module with finit_module(2) exactly once.
 * busybox insmod retries with init_module(2) on any error, so a module whose init
 * returns an error on purpose (test_vmalloc) would run its tests twice. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char params[4096] = "";
	size_t len = 0;
	int fd;

	if (argc < 2) {
		fprintf(stderr, "usage: kto-insmod MODULE.ko [param=value...]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		int n = snprintf(params + len, sizeof(params) - len, "%s%s", len ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= sizeof(params) - len) {
			fprintf(stderr, "kto-insmod: parameters too long\n");
			return 2;
		}
		len += n;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "kto-insmod: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (syscall(SYS_finit_module, fd, params, 0) != 0) {
		int err = errno;
		printf("kto-insmod: init returned %d (%s)\n", -err, strerror(err));
		return 1;
	}
	printf("kto-insmod: loaded\n");
	return 0;
}
