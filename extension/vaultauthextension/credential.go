package vaultauthextension

import (
	"context"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// credential is one value ready to send, built once per rotation so the
// per-request path only loads a pointer. It is immutable after creation.
type credential struct {
	header   string            // canonical HTTP header name
	values   []string          // []string{value}, shared with every request (len == cap)
	metadata map[string]string // gRPC metadata, shared with every RPC: gRPC only reads it
	version  int
}

func newCredential(header, scheme, value string, version int) *credential {
	if scheme != "" {
		value = scheme + " " + value
	}
	return &credential{
		header:   http.CanonicalHeaderKey(header),
		values:   []string{value}[:1:1],
		metadata: map[string]string{http.CanonicalHeaderKey(header): value},
		version:  version,
	}
}

// perRPCCredentials hands gRPC the value current at each call.
type perRPCCredentials struct{ ext *vaultAuth }

var _ credentials.PerRPCCredentials = perRPCCredentials{}

func (p perRPCCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	c := p.ext.current.Load()
	if c == nil {
		// Unavailable, so the exporter retries instead of dropping the data.
		return nil, status.Error(codes.Unavailable, p.ext.errNoCredential.Error())
	}
	return c.metadata, nil
}

func (p perRPCCredentials) RequireTransportSecurity() bool {
	return p.ext.client.RequireTransportSecurity
}

// roundTripper sets the current value on each HTTP request and asks for a
// re-read when the backend rejects it.
type roundTripper struct {
	base http.RoundTripper
	ext  *vaultAuth
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	c := rt.ext.current.Load()
	if c == nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper must close the body, even on error
		}
		return nil, rt.ext.errNoCredential
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
		rt.ext.backendRejected()
	}
	return resp, err
}
