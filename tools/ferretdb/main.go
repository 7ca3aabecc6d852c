// Command ferretdb runs FerretDB, a MongoDB wire-protocol server, on its SQLite handler.
//
// It embeds the library package github.com/FerretDB/FerretDB/ferretdb instead of building
// FerretDB's own cmd/ferretdb, because that command panics at start when it is built outside
// FerretDB's repository (its build/version/version.txt is generated, not shipped in the module).
//
//	ferretdb -listen-addr 127.0.0.1:27117 -sqlite-dir ./data
//	ferretdb -listen-addr 127.0.0.1:27117 -listen-tls 127.0.0.1:27118 -tls-cert-file server.pem -tls-key-file server.key -sqlite-dir ./data
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	sqliteDir := flag.String("sqlite-dir", "", "directory for the SQLite database files (created when missing)")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn or error")
	listenTLS := flag.String("listen-tls", "", "TCP address of a TLS listener (none when empty)")
	tlsCertFile := flag.String("tls-cert-file", "", "PEM certificate of the TLS listener")
	tlsKeyFile := flag.String("tls-key-file", "", "PEM private key of the TLS listener")
	flag.Parse()

	listener := ferretdb.ListenerConfig{TCP: *listenAddr, TLS: *listenTLS, TLSCertFile: *tlsCertFile, TLSKeyFile: *tlsKeyFile}
	if err := run(listener, *sqliteDir, *logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run(listener ferretdb.ListenerConfig, sqliteDir, logLevel string) error {
	if sqliteDir == "" {
		return errors.New("-sqlite-dir is required")
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}

	sqliteURL, err := sqliteDirURL(sqliteDir)
	if err != nil {
		return err
	}

	server, err := ferretdb.New(&ferretdb.Config{
		Listener:  listener,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	return server.Run(ctx)
}

// sqliteDirURL turns a directory into the SQLite URI FerretDB expects: "file:" scheme and a
// trailing slash. synchronous(FULL) makes every acknowledged write reach the disk before the
// reply, so data survives a server crash, which the restart tests rely on.
func sqliteDirURL(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("-sqlite-dir: %w", err)
	}

	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("-sqlite-dir: %w", err)
	}

	u := url.URL{
		Scheme:   "file",
		Opaque:   filepath.ToSlash(abs) + "/",
		RawQuery: url.Values{"_pragma": []string{"synchronous(FULL)"}}.Encode(),
	}

	return u.String(), nil
}
