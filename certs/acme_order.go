package certs

// This file speaks the ACME protocol for one name: account registration,
// the order, its authorizations and challenges, and finalization.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
)

// registered returns the client of the registered account, registering it
// first (once per process, or again after the CA lost it). The account key
// comes from the shared state: one account for the whole cluster.
func (a *ACME) registered(ctx context.Context) (*acme.Client, error) {
	if c := a.client.Load(); c != nil {
		return c, nil
	}
	v, err, _ := a.account.Do("account", func() (any, error) {
		if c := a.client.Load(); c != nil {
			return c, nil
		}
		keyPEM, err := a.state.accountKey(ctx, newAccountKey)
		if err != nil {
			return nil, err
		}
		key, err := parseECKey(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("certs: acme: account key: %w", err)
		}
		c := &acme.Client{
			Key:          key,
			DirectoryURL: a.directory,
			HTTPClient:   a.httpClient,
			UserAgent:    "massvhost",
			RetryBackoff: acmeRetryBackoff,
		}
		acct := &acme.Account{ExternalAccountBinding: a.eab}
		if a.email != "" {
			acct.Contact = []string{"mailto:" + a.email}
		}
		if _, err := c.Register(ctx, acct, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
			return nil, fmt.Errorf("certs: acme: register account at %s: %w", a.directory, err)
		}
		a.client.Store(c)
		a.log.Info("certs: acme: account ready", "directory", a.directory, "account", string(c.KID))
		return c, nil
	})
	if err != nil {
		return nil, failure(reasonAccount, err)
	}
	return v.(*acme.Client), nil
}

func newAccountKey() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// accountGone reports whether the CA no longer knows our account (a CA
// that lost its database, a deactivated account): registering again helps.
func accountGone(err error) bool {
	ae, ok := errors.AsType[*acme.Error](err)
	return ok && strings.HasSuffix(ae.ProblemType, ":accountDoesNotExist")
}

// order runs orders for name until one succeeds: a failed validation is
// retried once with each other challenge type the CA offers, and an
// account the CA forgot is registered again once.
func (a *ACME) order(ctx context.Context, name string) ([]byte, []byte, *x509.Certificate, error) {
	client, err := a.registered(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	remaining := slices.Clone(a.challenges)
	reregistered := false
	for {
		typ, certPEM, keyPEM, leaf, err := a.orderOnce(ctx, client, name, remaining)
		if err == nil {
			return certPEM, keyPEM, leaf, nil
		}
		if accountGone(err) && !reregistered {
			reregistered = true
			a.log.Warn("certs: acme: the CA does not know our account; registering again", "directory", a.directory)
			a.client.CompareAndSwap(client, nil)
			if client, err = a.registered(ctx); err != nil {
				return nil, nil, nil, err
			}
			continue
		}
		if _, ok := errors.AsType[*acme.AuthorizationError](err); !ok || typ == "" {
			return nil, nil, nil, err
		}
		remaining = slices.DeleteFunc(remaining, func(s string) bool { return s == typ })
		if len(remaining) == 0 {
			return nil, nil, nil, err
		}
		a.log.Info("certs: acme: challenge failed; trying another type", "host", name, "challenge", typ, "err", err)
	}
}

// orderOnce places one order and sees it through: each pending
// authorization is validated with the first of allowed the CA offers, then
// the order is finalized with a new P-256 key. It returns the challenge
// type that was tried.
func (a *ACME) orderOnce(ctx context.Context, client *acme.Client, name string, allowed []string) (typ string, certPEM, keyPEM []byte, leaf *x509.Certificate, err error) {
	a.stats.orders.Add(1)
	o, err := client.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		return "", nil, nil, nil, failure(reasonOrderFailed, fmt.Errorf("certs: acme: new order for %q: %w", name, err))
	}
	for _, u := range o.AuthzURLs {
		z, err := client.GetAuthorization(ctx, u)
		if err != nil {
			return "", nil, nil, nil, failure(reasonOrderFailed, fmt.Errorf("certs: acme: authorization for %q: %w", name, err))
		}
		switch z.Status {
		case acme.StatusValid:
			continue
		case acme.StatusPending:
		default:
			return "", nil, nil, nil, failure(reasonOrderFailed, fmt.Errorf("certs: acme: authorization for %q is %s", name, z.Status))
		}
		chal := pickChallenge(z.Challenges, allowed)
		if chal == nil {
			return "", nil, nil, nil, failure(reasonRejected, fmt.Errorf("certs: acme: the CA offers none of the challenges %v for %q", allowed, name))
		}
		typ = chal.Type
		cleanup, err := a.provision(ctx, client, name, chal)
		if err != nil {
			return "", nil, nil, nil, err
		}
		defer cleanup()
		if _, err := client.Accept(ctx, chal); err != nil {
			return typ, nil, nil, nil, failure(reasonOrderFailed, fmt.Errorf("certs: acme: accept %s challenge for %q: %w", typ, name, err))
		}
		if err := a.waitAuthorization(ctx, client, z.URI, name); err != nil {
			return typ, nil, nil, nil, err
		}
	}
	if o, err = a.waitOrder(ctx, client, o.URI); err != nil {
		return typ, nil, nil, nil, err
	}
	certPEM, keyPEM, leaf, err = a.finalize(ctx, client, name, o)
	return typ, certPEM, keyPEM, leaf, err
}

func pickChallenge(offered []*acme.Challenge, allowed []string) *acme.Challenge {
	for _, t := range allowed {
		for _, c := range offered {
			if c.Type == t && c.Status == acme.StatusPending {
				return c
			}
		}
	}
	return nil
}

// finalize sends the CSR for a new P-256 key and downloads the chain.
func (a *ACME) finalize(ctx context.Context, client *acme.Client, name string, o *acme.Order) ([]byte, []byte, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.CertificateRequest{DNSNames: []string{name}}
	if len(name) <= 64 { // the CN field's upper bound
		tmpl.Subject = pkix.Name{CommonName: name}
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, nil, err
	}
	der, _, err := client.CreateCertFromOrder(ctx, o, csr, true)
	if err != nil {
		return nil, nil, nil, failure(reasonOrderFailed, fmt.Errorf("certs: acme: finalize order for %q: %w", name, err))
	}
	var chain bytes.Buffer
	for _, d := range der {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: d})
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	leaf, err := leafOfPEM(name, chain.Bytes(), keyPEM)
	if err != nil {
		return nil, nil, nil, failure(reasonBadCertificate, fmt.Errorf("certs: acme: the CA's certificate for %q: %w", name, err))
	}
	return chain.Bytes(), keyPEM, leaf, nil
}

// Polling of authorizations and orders: quick at first, since a healthy CA
// validates within a second, then backing off. x/crypto/acme's own Wait
// methods sleep a full second before the first look.
const (
	pollMin = 100 * time.Millisecond
	pollMax = 2 * time.Second
)

// poll calls check after growing pauses until it reports done or ctx ends.
func poll(ctx context.Context, check func() (bool, error)) error {
	d := pollMin
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if done, err := check(); done || err != nil {
			return err
		}
		d = min(2*d, pollMax)
		t.Reset(d)
	}
}

// waitAuthorization waits until the authorization at url is valid. An
// invalid one gives an *acme.AuthorizationError with the CA's reasons.
func (a *ACME) waitAuthorization(ctx context.Context, client *acme.Client, url, name string) error {
	return poll(ctx, func() (bool, error) {
		z, err := client.GetAuthorization(ctx, url)
		if err != nil {
			return false, failure(reasonOrderFailed, fmt.Errorf("certs: acme: authorization for %q: %w", name, err))
		}
		switch z.Status {
		case acme.StatusValid:
			return true, nil
		case acme.StatusPending, acme.StatusProcessing:
			return false, nil
		}
		ae := &acme.AuthorizationError{URI: url, Identifier: name}
		for _, c := range z.Challenges {
			if c.Error != nil {
				ae.Errors = append(ae.Errors, c.Error)
			}
		}
		return false, ae
	})
}

// waitOrder waits until the order at url is ready to finalize.
func (a *ACME) waitOrder(ctx context.Context, client *acme.Client, url string) (*acme.Order, error) {
	var o *acme.Order
	err := poll(ctx, func() (bool, error) {
		var err error
		o, err = client.GetOrder(ctx, url)
		if err != nil {
			return false, failure(reasonOrderFailed, fmt.Errorf("certs: acme: order %s: %w", url, err))
		}
		switch o.Status {
		case acme.StatusReady, acme.StatusValid:
			return true, nil
		case acme.StatusInvalid:
			return false, &acme.OrderError{OrderURL: url, Status: o.Status, Problem: o.Error}
		}
		return false, nil
	})
	return o, err
}
