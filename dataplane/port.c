/*
 * port.c - DPDK port bring-up (see port.h).
 *
 * Works with any PMD: checksum offloads are enabled only when the device
 * offers them and the stack is told which ones are on; devices with fewer
 * queues than dataplane cores get one queue pair owned by core 0 and
 * software steering does the rest (DESIGN 2).
 */
#include "dataplane/port.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/kcmp.h>

#include <rte_ethdev.h>

int port_setup(uint16_t n_cores, uint16_t rx_desc, uint16_t tx_desc,
	       uint16_t mtu, struct rte_mempool *pool, struct port_info *pi)
{
	struct rte_eth_conf pc;
	struct rte_eth_dev_info di;
	uint16_t pid, nq;
	int rc;

	memset(pi, 0, sizeof(*pi));
	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "mxgate: no DPDK port available (check the "
				"--port device spec)\n");
		return -ENODEV;
	}
	RTE_ETH_FOREACH_DEV(pid)
	{
		break;
	}
	rc = rte_eth_dev_info_get(pid, &di);
	if (rc != 0)
		return rc;
	snprintf(pi->driver, sizeof(pi->driver), "%s", di.driver_name);

	nq = (di.max_rx_queues >= n_cores && di.max_tx_queues >= n_cores)
		     ? n_cores
		     : 1;

	memset(&pc, 0, sizeof(pc));
	pi->tx_offloads = di.tx_offload_capa &
			  (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM |
			   RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
			   RTE_ETH_TX_OFFLOAD_MULTI_SEGS);
	pi->rx_offloads = di.rx_offload_capa &
			  (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM |
			   RTE_ETH_RX_OFFLOAD_TCP_CKSUM);
	pc.txmode.offloads = pi->tx_offloads;
	pc.rxmode.offloads = pi->rx_offloads;

	rc = rte_eth_dev_configure(pid, nq, nq, &pc);
	if (rc < 0) {
		fprintf(stderr, "mxgate: port %u configure: %s\n", pid,
			strerror(-rc));
		return rc;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &rx_desc, &tx_desc);
	if (rc < 0)
		return rc;
	for (uint16_t q = 0; q < nq; q++) {
		struct rte_eth_txconf txc = di.default_txconf;
		struct rte_eth_rxconf rxc = di.default_rxconf;

		txc.offloads = pi->tx_offloads;
		rxc.offloads = pi->rx_offloads;
		rc = rte_eth_rx_queue_setup(pid, q, rx_desc,
					    rte_eth_dev_socket_id(pid), &rxc,
					    pool);
		if (rc < 0) {
			fprintf(stderr, "mxgate: rx queue %u: %s\n", q,
				strerror(-rc));
			return rc;
		}
		rc = rte_eth_tx_queue_setup(pid, q, tx_desc,
					    rte_eth_dev_socket_id(pid), &txc);
		if (rc < 0) {
			fprintf(stderr, "mxgate: tx queue %u: %s\n", q,
				strerror(-rc));
			return rc;
		}
	}
	if (mtu) {
		rc = rte_eth_dev_set_mtu(pid, mtu);
		if (rc < 0 && rc != -ENOTSUP)
			fprintf(stderr, "mxgate: set mtu %u: %s (ignored)\n",
				mtu, strerror(-rc));
	}
	rc = rte_eth_dev_start(pid);
	if (rc < 0) {
		fprintf(stderr, "mxgate: port %u start: %s\n", pid,
			strerror(-rc));
		return rc;
	}
	rte_eth_macaddr_get(pid, &pi->mac);
	pi->port_id = pid;
	pi->n_queues = nq;
	return 0;
}

#define TAP_MAX_FDS 64

static void (*tap_kick)(int);
static int tap_kick_sig;
static int tap_fds[TAP_MAX_FDS]; /* every tap descriptor, ascending */
static unsigned tap_nfds;
/* The descriptor of each rx queue, when known (tap_map_queues). */
static int tap_qfd[TAP_MAX_FDS];
static unsigned tap_nq;

/* Same open file (a dup)? 1, 0, or -1 when the kernel cannot say. */
static int same_file(int a, int b)
{
	pid_t pid = getpid();
	long r = syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b);

	return r < 0 ? -1 : r == 0;
}

/* The PMD opens a keep-alive file when the device is created (a
 * detached queue: TUNGETIFF says IFF_DETACH_QUEUE) and then one tap file
 * per queue pair (at rx_queue_setup of queue q; the tx side is a dup of
 * it), queues in order 0, 1, ... So the distinct attached files in
 * ascending descriptor order are queue 0, 1, ... Leaves tap_nq at 0 (every
 * lcore then waits on all descriptors) when kcmp or TUNGETIFF cannot say
 * or the count does not add up. */
static void tap_map_queues(unsigned nq)
{
	int first[TAP_MAX_FDS];
	unsigned nf = 0, nq_found = 0;

	for (unsigned i = 0; i < tap_nfds; i++) {
		unsigned g;

		for (g = 0; g < nf; g++) {
			int r = same_file(tap_fds[i], first[g]);

			if (r < 0)
				return;
			if (r)
				break;
		}
		if (g == nf)
			first[nf++] = tap_fds[i];
	}
	for (unsigned g = 0; g < nf; g++) {
		struct ifreq ifr;

		memset(&ifr, 0, sizeof(ifr));
		if (ioctl(first[g], TUNGETIFF, &ifr) < 0)
			return;
		if (ifr.ifr_flags & IFF_DETACH_QUEUE)
			continue; /* the keep-alive */
		if (nq_found == nq)
			return; /* more queue files than queues */
		tap_qfd[nq_found++] = first[g];
	}
	if (nq_found == nq)
		tap_nq = nq;
}

static int int_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

bool port_tap_arm(const struct port_info *pi)
{
	struct sigaction sa;
	struct dirent *de;
	DIR *d;
	int sig;

	if (strcmp(pi->driver, "net_tap") != 0)
		return false;
	d = opendir("/proc/self/fd");
	if (!d)
		return false;
	while ((de = readdir(d)) != NULL && tap_nfds < TAP_MAX_FDS) {
		char path[64], target[PATH_MAX];
		ssize_t n;
		int fd, fl;

		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, "/dev/net/tun") != 0)
			continue;
		/* the queue descriptors are the ones that signal */
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 || !(fl & O_ASYNC))
			continue;
		tap_fds[tap_nfds++] = fd;
	}
	closedir(d);
	if (tap_nfds == 0)
		return false;
	/* The PMD's trigger is the handler of the signal the descriptors
	 * raise (F_SETSIG; 0 would mean SIGIO). */
	sig = fcntl(tap_fds[0], F_GETSIG);
	if (sig <= 0)
		sig = SIGIO;
	if (sigaction(sig, NULL, &sa) != 0 || (sa.sa_flags & SA_SIGINFO) ||
	    sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN) {
		tap_nfds = 0;
		return false;
	}
	qsort(tap_fds, tap_nfds, sizeof(tap_fds[0]), int_cmp);
	for (unsigned i = 0; i < tap_nfds; i++) {
		int fl = fcntl(tap_fds[i], F_GETFL);

		if (fl >= 0)
			(void)fcntl(tap_fds[i], F_SETFL, fl & ~O_ASYNC);
	}
	tap_kick = sa.sa_handler;
	tap_kick_sig = sig;
	tap_map_queues(pi->n_queues);
	if (tap_nq != pi->n_queues)
		fprintf(stderr,
			"mxgate: net_tap: %u tap descriptors, %u queues, no "
			"mapping (kcmp/TUNGETIFF refused or count off); idle "
			"lcores wait on all of them\n",
			tap_nfds, pi->n_queues);
	else
		printf("mxgate: net_tap: receive without per-frame signals; "
		       "idle cores wait on their queue (%u queue%s)\n",
		       tap_nq, tap_nq == 1 ? "" : "s");
	return true;
}

void port_rx_kick(void)
{
	if (tap_kick)
		tap_kick(tap_kick_sig);
}

void port_idle_wait(int queue, int wake_fd, uint64_t us)
{
	struct pollfd pf[TAP_MAX_FDS + 1];
	struct timespec ts = {.tv_sec = (time_t)(us / 1000000),
			      .tv_nsec = (long)(us % 1000000) * 1000};
	unsigned n = 0;

	if (tap_kick && queue >= 0) {
		if ((unsigned)queue < tap_nq) {
			pf[n].fd = tap_qfd[queue];
			pf[n++].events = POLLIN;
		} else {
			for (unsigned i = 0; i < tap_nfds; i++) {
				pf[n].fd = tap_fds[i];
				pf[n++].events = POLLIN;
			}
		}
	}
	if (wake_fd >= 0) {
		pf[n].fd = wake_fd;
		pf[n++].events = POLLIN;
	}
	if (n == 0) {
		nanosleep(&ts, NULL);
		return;
	}
	(void)ppoll(pf, n, &ts, NULL);
}

void port_teardown(const struct port_info *pi)
{
	rte_eth_dev_stop(pi->port_id);
	rte_eth_dev_close(pi->port_id);
}
