/*-------------------------------------------------------------------------
 *
 * redis_tls.c
 *		  TLS for connections to Redis: the client context from the server
 *		  options, a handshake on the latch, and OpenSSL's state around
 *		  hiredis's reads and writes.
 *
 * hiredis_ssl (hiredis 1.x) can only hand a connected socket to OpenSSL and
 * send the first handshake message; on a non-blocking socket it returns
 * then, and finishing the handshake is left to the caller.  rs_tls_start
 * builds the SSL object itself (CA, client certificate, server name and the
 * check of it), hands it to hiredis with redisInitiateSSL(), and drives
 * SSL_do_handshake() with WaitLatchOrSocket() in between, so the handshake
 * is bounded by connect_timeout and ends at a query cancel, like the TCP
 * connection before it.  From then on hiredis reads and writes through the
 * SSL object, which the redisContext owns and frees.
 *
 * OpenSSL keeps one error queue per thread, shared with the backend's own
 * TLS to its client; SSL_get_error() looks at that queue first, so a stale
 * entry would turn a harmless "would block" into a failure.  The queue is
 * cleared before each TLS call made here and before hiredis's reads and
 * writes (rs_tls_clear_errors).
 *
 * Built without hiredis_ssl (hiredis 0.14), a server with tls 'on' is
 * rejected when it is created (options.c) and, should one exist, when it
 * connects.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>

#ifdef RS_HAVE_TLS
#include <hiredis/hiredis.h>
#include <hiredis/hiredis_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "options.h"
#include "redis_conn.h"

#ifdef RS_HAVE_TLS

static SSL_CTX *rs_tls_context(const RsConnection *conn, const RsServerOptions *opts);
pg_noreturn static void rs_tls_context_error(SSL_CTX *ctx, const RsConnection *conn,
											const char *what, const char *file);
pg_noreturn static void rs_tls_handshake_error(RsConnection *conn,
											  const RsServerOptions *opts, int sslerr);
pg_noreturn static void rs_tls_verify_error(RsConnection *conn, long verify);
static const char *rs_tls_reason(void);
static int	rs_tls_no_passphrase(char *buf, int size, int rwflag, void *userdata);

/*
 * rs_tls_start
 *		Make the connected socket of "conn" a TLS connection: handshake
 *		within "deadline" and check the server's certificate as tls_verify
 *		says.  Raises an error on failure; the caller discards the
 *		connection.
 */
void
rs_tls_start(RsConnection *conn, const RsServerOptions *opts, TimestampTz deadline)
{
	const char *name = opts->tls_server_name ? opts->tls_server_name : opts->host;
	unsigned char addrbuf[sizeof(struct in6_addr)];
	bool		name_is_ip;
	SSL_CTX    *sslctx;
	SSL		   *ssl;

	name_is_ip = inet_pton(AF_INET, name, addrbuf) == 1 ||
		inet_pton(AF_INET6, name, addrbuf) == 1;

	sslctx = rs_tls_context(conn, opts);
	ERR_clear_error();
	ssl = SSL_new(sslctx);
	SSL_CTX_free(sslctx);		/* the SSL keeps its own reference */
	if (ssl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail_internal("%s", rs_tls_reason())));

	/* Server Name Indication carries host names only (RFC 6066). */
	if ((!name_is_ip && SSL_set_tlsext_host_name(ssl, name) != 1) ||
		(opts->tls_verify == RS_TLS_VERIFY_FULL &&
		 (name_is_ip
		  ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1
		  : SSL_set1_host(ssl, name) != 1)))
	{
		const char *reason = rs_tls_reason();

		SSL_free(ssl);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid TLS server name \"%s\" for Redis server \"%s\"",
						name, conn->desc),
				 errdetail_internal("%s", reason)));
	}

	/*
	 * hiredis sets the socket on the SSL and sends the first handshake
	 * message; as the socket is non-blocking it returns when OpenSSL waits
	 * for the server, and from then on owns the SSL.  (The server's answer
	 * may already be there, and the handshake then ends, or fails, in it.)
	 */
	ERR_clear_error();
	if (redisInitiateSSL(conn->ctx, ssl) != REDIS_OK)
	{
		char		errbuf[128];
		long		verify = SSL_get_verify_result(ssl);

		strlcpy(errbuf, conn->ctx->errstr, sizeof(errbuf));
		SSL_free(ssl);
		ERR_clear_error();
		if (verify != X509_V_OK)
			rs_tls_verify_error(conn, verify);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not establish a TLS connection to Redis server \"%s\"",
						conn->desc),
				 errdetail_internal("%s: %s", conn->addr, errbuf)));
	}
	conn->tls = ssl;

	for (;;)
	{
		int			rc;
		int			events;

		ERR_clear_error();
		rc = SSL_do_handshake(ssl);
		if (rc == 1)
			break;
		rc = SSL_get_error(ssl, rc);
		if (rc == SSL_ERROR_WANT_READ)
			events = WL_SOCKET_READABLE;
		else if (rc == SSL_ERROR_WANT_WRITE)
			events = WL_SOCKET_WRITEABLE;
		else
			rs_tls_handshake_error(conn, opts, rc);

		if (rs_wait_socket(conn, events, deadline) & WL_TIMEOUT)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("could not establish a TLS connection to Redis server \"%s\"",
							conn->desc),
					 errdetail("The TLS handshake with %s did not end within %d ms.",
							   conn->addr, opts->connect_timeout),
					 errhint("Check that the server accepts TLS on this port.")));
	}
	ERR_clear_error();
}

/*
 * rs_tls_context
 *		A client context from the server's TLS options: TLS 1.2 or later, the
 *		CAs to trust, the verification level and the client certificate.
 */
static SSL_CTX *
rs_tls_context(const RsConnection *conn, const RsServerOptions *opts)
{
	SSL_CTX    *ctx;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail_internal("%s", rs_tls_reason())));
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		rs_tls_context_error(ctx, conn, "set the TLS version", NULL);

	/* A key file with a passphrase fails to load instead of prompting. */
	SSL_CTX_set_default_passwd_cb(ctx, rs_tls_no_passphrase);

	if (opts->tls_verify != RS_TLS_VERIFY_NONE)
	{
		if (opts->tls_ca_file != NULL)
		{
			if (SSL_CTX_load_verify_locations(ctx, opts->tls_ca_file, NULL) != 1)
				rs_tls_context_error(ctx, conn, "load CA file", opts->tls_ca_file);
		}
		else if (SSL_CTX_set_default_verify_paths(ctx) != 1)
			rs_tls_context_error(ctx, conn, "load the system's trusted CAs", NULL);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

	if (opts->tls_cert_file != NULL)
	{
		const char *key = opts->tls_key_file ? opts->tls_key_file : opts->tls_cert_file;

		if (SSL_CTX_use_certificate_chain_file(ctx, opts->tls_cert_file) != 1)
			rs_tls_context_error(ctx, conn, "load certificate file", opts->tls_cert_file);
		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
			rs_tls_context_error(ctx, conn, "load key file", key);
		if (SSL_CTX_check_private_key(ctx) != 1)
			rs_tls_context_error(ctx, conn, "match key file", key);
	}
	return ctx;
}

/*
 * rs_tls_context_error
 *		Free the context and report what could not be set up; "what" is
 *		completed by the file name when there is one.
 */
static void
rs_tls_context_error(SSL_CTX *ctx, const RsConnection *conn, const char *what,
					 const char *file)
{
	const char *reason = rs_tls_reason();

	SSL_CTX_free(ctx);
	if (file != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not %s \"%s\" for Redis server \"%s\"", what, file, conn->desc),
				 errdetail_internal("%s", reason)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not %s for Redis server \"%s\"", what, conn->desc),
			 errdetail_internal("%s", reason)));
}

/*
 * rs_tls_handshake_error
 *		Report a failed handshake: a certificate that did not verify, the
 *		server closing the connection, or a protocol error.
 */
static void
rs_tls_handshake_error(RsConnection *conn, const RsServerOptions *opts, int sslerr)
{
	SSL		   *ssl = conn->tls;
	long		verify = SSL_get_verify_result(ssl);
	const char *reason = rs_tls_reason();

	if (verify != X509_V_OK)
		rs_tls_verify_error(conn, verify);
	if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not establish a TLS connection to Redis server \"%s\"",
						conn->desc),
				 errdetail("%s closed the connection during the TLS handshake.", conn->addr),
				 opts->tls_cert_file == NULL
				 ? errhint("Check that the server accepts TLS on this port, and whether it requires a client certificate (tls_cert_file).")
				 : errhint("Check that the server accepts TLS on this port and trusts the client certificate.")));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not establish a TLS connection to Redis server \"%s\"",
					conn->desc),
			 errdetail_internal("%s: %s", conn->addr, reason),
			 errhint("Check that the server accepts TLS on this port.")));
}

/*
 * rs_tls_verify_error
 *		Report a server certificate that did not verify, with OpenSSL's
 *		reason, and a hint for a name that did not match.
 */
static void
rs_tls_verify_error(RsConnection *conn, long verify)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not verify the TLS certificate of Redis server \"%s\"",
					conn->desc),
			 errdetail("The certificate presented by %s did not verify: %s.",
					   conn->addr, X509_verify_cert_error_string(verify)),
			 verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH
			 ? errhint("Set tls_server_name to a name the certificate holds, or tls_verify to \"ca\" to skip the name check.")
			 : errhint("Set tls_ca_file to the CA that signed the server's certificate.")));
}

/* OpenSSL's reason for the last failure, and an empty error queue. */
static const char *
rs_tls_reason(void)
{
	unsigned long e = ERR_get_error();
	const char *reason = NULL;

	/* A failed system call (a missing file) is reported as its errno. */
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SYS)
		reason = strerror(ERR_GET_REASON(e));
	else if (e != 0)
		reason = ERR_reason_error_string(e);

	ERR_clear_error();
	return reason ? reason : "no reason given";
}

/* Passphrase callback: there is none to give. */
static int
rs_tls_no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	if (size > 0)
		buf[0] = '\0';
	return 0;
}

/*
 * rs_tls_pending
 *		Whether OpenSSL holds decrypted bytes that hiredis has not read yet;
 *		the socket may then have nothing to read, so do not wait on it.
 */
bool
rs_tls_pending(RsConnection *conn)
{
	return conn->tls != NULL && SSL_pending((SSL *) conn->tls) > 0;
}

/*
 * rs_tls_clear_errors
 *		Empty OpenSSL's error queue before hiredis reads or writes over TLS.
 */
void
rs_tls_clear_errors(RsConnection *conn)
{
	if (conn->tls != NULL)
		ERR_clear_error();
}

/*
 * rs_tls_io_reason
 *		After a failed read or write over TLS, OpenSSL's reason (such as the
 *		server's alert that it requires a client certificate), which says
 *		more than the errno hiredis reports; NULL when there is none.
 */
const char *
rs_tls_io_reason(RsConnection *conn)
{
	if (conn->tls == NULL || ERR_peek_error() == 0)
		return NULL;
	return rs_tls_reason();
}

#else							/* !RS_HAVE_TLS */

void
rs_tls_start(RsConnection *conn, const RsServerOptions *opts, TimestampTz deadline)
{
	rs_tls_unsupported();
}

bool
rs_tls_pending(RsConnection *conn)
{
	return false;
}

void
rs_tls_clear_errors(RsConnection *conn)
{
}

const char *
rs_tls_io_reason(RsConnection *conn)
{
	return NULL;
}

#endif							/* RS_HAVE_TLS */

/* Whether this build can connect over TLS. */
bool
rs_tls_available(void)
{
#ifdef RS_HAVE_TLS
	return true;
#else
	return false;
#endif
}

/*
 * rs_tls_unsupported
 *		Reject TLS in a build without it.
 */
void
rs_tls_unsupported(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("redis_sync was built without TLS support"),
			 errhint("Build redis_sync with hiredis 1.x and its hiredis_ssl library to connect to Redis over TLS.")));
}
