package source

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// Value is one credential ready to send, built once per rotation so the
// per-request path only loads a pointer. It is immutable after creation.
type Value struct {
	header   string            // canonical HTTP header name
	values   []string          // []string{value}, shared with every request (len == cap)
	metadata map[string]string // gRPC metadata, shared with every RPC: gRPC only reads it
	version  int
	created  time.Time // when the KV v2 version was written; zero when unknown
	expires  time.Time // end of the lease; zero when the value does not expire
}

func newCredential(header, scheme, value string) *Value {
	if scheme != "" {
		value = scheme + " " + value
	}
	return &Value{
		header:   http.CanonicalHeaderKey(header),
		values:   []string{value}[:1:1],
		metadata: map[string]string{http.CanonicalHeaderKey(header): value},
	}
}

// transportGuard keeps the credential on the connections it is meant for:
// with TLS, or to a loopback address.
type transportGuard struct {
	id      string
	require bool
}

// errPlaintext is what an export gets when the guard refuses; retryable, so
// nothing is lost while the configuration is fixed.
func (g transportGuard) errPlaintext(host string) error {
	return fmt.Errorf("%s: refusing to send the credential to %s without TLS: enable tls on the exporter, "+
		"or set client.require_transport_security: false if something else encrypts this hop", g.id, host)
}

// isLoopback says whether host (a name or an address, maybe with a port)
// is this machine.
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewRoundTripper puts src's credential on each HTTP export through base
// (extensionauth.HTTPClient).
func NewRoundTripper(base http.RoundTripper, src Source, id component.ID, s Settings) http.RoundTripper {
	return &roundTripper{base: base, source: src, guard: transportGuard{id: id.String(), require: s.RequireTransportSecurity}}
}

// NewPerRPCCredentials hands gRPC src's credential for each call
// (extensionauth.GRPCClient).
func NewPerRPCCredentials(src Source, id component.ID, s Settings) credentials.PerRPCCredentials {
	return perRPCCredentials{source: src, guard: transportGuard{id: id.String(), require: s.RequireTransportSecurity}}
}

// perRPCCredentials hands gRPC the credential for each call.
type perRPCCredentials struct {
	source Source
	guard  transportGuard
}

var _ credentials.PerRPCCredentials = perRPCCredentials{}

func (p perRPCCredentials) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	if p.guard.require {
		if ri, ok := credentials.RequestInfoFromContext(ctx); ok &&
			credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity) != nil {
			// uri is https://<authority>/<service> whatever the transport.
			host := ""
			if len(uri) > 0 {
				host, _, _ = strings.Cut(strings.TrimPrefix(uri[0], "https://"), "/")
			}
			if !isLoopback(host) {
				return nil, status.Error(codes.Unavailable, p.guard.errPlaintext(host).Error())
			}
		}
	}
	c, err := p.source.Credential(ctx)
	if err != nil {
		return nil, err
	}
	return c.metadata, nil
}

// RequireTransportSecurity is false so that gRPC lets the exporter dial a
// loopback endpoint without TLS; GetRequestMetadata enforces the rest per call.
func (p perRPCCredentials) RequireTransportSecurity() bool { return false }

// roundTripper sets the credential on each HTTP request and asks for a
// re-read when the backend rejects it.
type roundTripper struct {
	base   http.RoundTripper
	source Source
	guard  transportGuard
	// endpoint is the host of the exporter's first request, its configured
	// endpoint: the only host the credential goes to. A redirect elsewhere
	// is followed without it (Go strips its own sensitive headers on such
	// hops; this one it does not know, and the exporter's compression layer
	// makes new requests, so the redirect chain cannot be read back).
	endpoint atomic.Pointer[url.URL]
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	endpoint := rt.endpoint.Load()
	if endpoint == nil {
		u := &url.URL{Scheme: req.URL.Scheme, Host: req.URL.Host}
		if !rt.endpoint.CompareAndSwap(nil, u) {
			u = rt.endpoint.Load()
		}
		endpoint = u
	}
	if !sameHost(endpoint, req.URL) || (req.Response != nil && !sameHost(originalRequest(req).URL, req.URL)) {
		return rt.base.RoundTrip(req)
	}
	if rt.guard.require && req.URL.Scheme != "https" && !isLoopback(req.URL.Host) {
		closeBody(req)
		return nil, rt.guard.errPlaintext(req.URL.Host)
	}
	if t, ok := rt.source.(*Tenants); ok {
		return rt.roundTripParked(req, t)
	}
	c, err := rt.source.Credential(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	// A RoundTripper must not modify the request: copy it with its own header map.
	out := *req
	out.Header = make(http.Header, len(req.Header)+1)
	for k, v := range req.Header {
		out.Header[k] = v
	}
	out.Header[c.header] = c.values
	resp, err := rt.base.RoundTrip(&out)
	if err == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		rt.source.Rejected(req.Context())
	}
	return resp, err
}

// closeBody closes a request body, as a RoundTripper must even on error.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// originalRequest follows a redirect chain back to the request the exporter made.
func originalRequest(req *http.Request) *http.Request {
	for req.Response != nil && req.Response.Request != nil {
		req = req.Response.Request
	}
	return req
}

// sameHost compares hosts with their ports, defaults made explicit.
func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}
