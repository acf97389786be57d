/* The control protocol's wire helpers (docs/ARCHITECTURE.md "Control protocol": big-endian u32 frame
 * length, then the frame), shared by ssi-run's foreground restart (client/restart.c) and ssi-ctl
 * (ctl/ssi-ctl.c). Stateless. */
#ifndef SSI_CTL_WIRE_H
#define SSI_CTL_WIRE_H
#include <stddef.h>
#include <stdint.h>

void ctl_put16(uint8_t *p, uint16_t v);
void ctl_put32(uint8_t *p, uint32_t v);
uint16_t ctl_get16(const uint8_t *p);
uint32_t ctl_get32(const uint8_t *p);
/* All n bytes to the socket fd (no SIGPIPE); 0, or -1 with errno set. */
int ctl_write_all(int fd, const void *p, size_t n);
/* CLOCK_MONOTONIC in milliseconds, for ctl_read_all's deadline. */
long long ctl_now_ms(void);
/* Exactly n bytes from fd: 0; -1 the peer closed the connection (or an error); -2 deadline_ms (a
 * ctl_now_ms() time; < 0: none) passed first. */
int ctl_read_all(int fd, void *p, size_t n, long long deadline_ms);

#endif
