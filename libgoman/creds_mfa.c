/*
 * creds_mfa.c - the MFA code of a role profile with mfa_serial, read from the terminal.
 *
 * The code comes from /dev/tty, never from argv, stdin (goman commands read JSON lines
 * there) or the environment, and is not echoed. With no controlling terminal (CI, a pipe
 * under nohup) nobody can answer: that is an error naming the profile's mfa_serial, which
 * the caller reports as a configuration error (exit 78) instead of hanging. The caller
 * holds the credential cache lock across the prompt, so the other processes of a pipeline
 * wait for this one answer instead of asking again.
 *
 * Ownership: code is the caller's buffer; the line read is wiped.
 * Errors: -1 with ECREDS "MFARequired" (no terminal, no answer, not digits).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include "creds_int.h"

static int no_code(struct goman_err *err, const char *serial, const char *why)
{
	return goman_err_set(err, GOMAN_ECREDS, GOMAN_CLASS_AUTH, "MFARequired",
			     "mfa_serial %s needs a code typed at a terminal: %s", serial, why);
}

int gm_mfa_prompt(const char *serial, char code[16], struct goman_err *err)
{
	code[0] = '\0';
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return no_code(err, serial, "there is no terminal (/dev/tty)");
	struct termios old, quiet;
	bool restore = tcgetattr(fd, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	char prompt[300], line[64];
	int n = snprintf(prompt, sizeof(prompt), "Enter MFA code for %s: ", serial);
	if (n > 0 &&
	    write(fd, prompt, (size_t)n < sizeof(prompt) ? (size_t)n : sizeof(prompt) - 1) < 0)
		n = -1;
	ssize_t r;
	do
		r = read(fd, line, sizeof(line) - 1);
	while (r < 0 && errno == EINTR);
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0)
		n = -1;
	close(fd);
	size_t len = r > 0 ? (size_t)r : 0;
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	line[len] = '\0';
	bool digits = len >= 6 && len < 16 && strspn(line, "0123456789") == len;
	if (digits)
		memcpy(code, line, len + 1);
	explicit_bzero(line, sizeof(line));
	if (!digits)
		return no_code(err, serial,
			       r > 0 ? "the answer is not a code of digits" : "no answer was read");
	return 0;
}
