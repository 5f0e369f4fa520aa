/*
 * agent_port.h: a free TCP port on 127.0.0.1 for the link and agent tests,
 * so parallel tests never collide on a fixed port. Header only: the link
 * test and the agent's end-to-end test are built in different folders.
 */
#ifndef AGENT_PORT_H
#define AGENT_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* agent_test_free_port: binds port 0 on 127.0.0.1, reads the port the
 * kernel picked and releases it. Returns the port; aborts the test
 * program, saying why, when there is none. */
static inline int
agent_test_free_port(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port = -1;

	if (fd < 0) {
		perror("agent_test_free_port: socket");
		abort();
	}
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0) {
		port = ntohs(a.sin_port);
	}
	close(fd);
	if (port <= 0) {
		fprintf(stderr, "agent_test_free_port: no free port on 127.0.0.1\n");
		abort();
	}
	return port;
}

#endif /* AGENT_PORT_H */
