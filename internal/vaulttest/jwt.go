package vaulttest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
)

// Signer signs test JWTs with its own RSA key, for JWT and Kubernetes auth
// mounts configured to trust PublicPEM.
type Signer struct {
	Key *rsa.PrivateKey
	KID string
}

// NewSigner makes a 2048-bit RSA signer.
func NewSigner(t T) *Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("rsa key: %v", err)
	}
	return &Signer{Key: k, KID: randomID()[:8]}
}

// PublicPEM is the public key in PEM, as Vault's jwt_validation_pubkeys takes it.
func (s *Signer) PublicPEM(t T) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.Key.PublicKey)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Sign returns an RS256 JWT with the given claims.
func (s *Signer) Sign(t T, claims map[string]any) string {
	t.Helper()
	return s.SignAs(t, "RS256", s.KID, claims)
}

// SignAs returns a JWT signed with alg (RS256 or PS256) under key id kid.
func (s *Signer) SignAs(t T, alg, kid string, claims map[string]any) string {
	t.Helper()
	signingInput := encodeSegment(t, map[string]any{"alg": alg, "typ": "JWT", "kid": kid}) +
		"." + encodeSegment(t, claims)
	sum := sha256.Sum256([]byte(signingInput))
	var sig []byte
	var err error
	switch alg {
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.Key, crypto.SHA256, sum[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, s.Key, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		t.Fatalf("sign: unsupported alg %s", alg)
	}
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// EncodeSegment base64url-encodes v as JSON, for building JWTs by hand
// (forged headers, alg none).
func EncodeSegment(t T, v any) string { return encodeSegment(t, v) }

func encodeSegment(t T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
