// The NATS peer of `vigil bench bus`: nats-server (Debian's) with TLS on a free loopback port,
// measured with the official Go client (Debian's golang-github-nats-io-go-nats-dev), the same
// figures as Vigil's bus in the same run. Prints one JSON object per figure.
//
// Built by scripts/bench: GOPATH=/usr/share/gocode GO111MODULE=off go build -o .build/natsbench Benchmarks/nats/natsbench.go
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	server := flag.String("server", "/usr/sbin/nats-server", "the nats-server binary (Debian installs it in /usr/sbin)")
	roundTrips := flag.Int("round-trips", 10000, "sequential request/reply round trips")
	events := flag.Int("events", 200000, "events published to one subscriber")
	subscribers := flag.Int("subscribers", 1000, "subscribers of the fan-out event")
	rounds := flag.Int("rounds", 20, "fan-out rounds")
	only := flag.String("only", "", "messaging (round trips and events per second) or fanout; all figures when empty")
	flag.Parse()
	if *only != "" && *only != "messaging" && *only != "fanout" {
		check(fmt.Errorf("-only: messaging or fanout, not %q", *only))
	}

	folder, err := os.MkdirTemp("", "vigil-bench-nats-")
	check(err)
	defer os.RemoveAll(folder)
	certificate, key := selfSigned(folder)
	port := freePort()
	// (Debian's nats-server has no --max_payload option; its default, 1 MB, is ample for 600-byte events.)
	process := exec.Command(*server, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "--tls", "--tlscert", certificate, "--tlskey", key)
	check(process.Start())
	defer process.Process.Kill()
	url := fmt.Sprintf("tls://127.0.0.1:%d", port)
	connect := func() *nats.Conn {
		var connection *nats.Conn
		var err error
		for attempt := 0; attempt < 50; attempt++ {
			if connection, err = nats.Connect(url, nats.RootCAs(certificate)); err == nil {
				return connection
			}
			time.Sleep(100 * time.Millisecond)
		}
		check(err)
		return nil
	}
	// A typical channel event: about 600 bytes, as Vigil's bench sends.
	event := make([]byte, 600)
	for index := range event {
		event[index] = 'x'
	}

	if *only != "fanout" {
		messaging(connect, event, *roundTrips, *events)
	}
	if *only != "messaging" {
		fanOut(connect, event, *subscribers, *rounds)
	}
}

// Sequential request/reply round trips, then events per second to one subscriber.
func messaging(connect func() *nats.Conn, event []byte, roundTrips int, events int) {
	// Round trips: a responder on its own connection, a requester waiting for each reply.
	responder := connect()
	_, err := responder.Subscribe("session.identity", func(message *nats.Msg) { message.Respond([]byte(`{"ok":true}`)) })
	check(err)
	check(responder.Flush())
	requester := connect()
	for warm := 0; warm < 200; warm++ {
		_, err := requester.Request("session.identity", []byte(`{}`), 5*time.Second)
		check(err)
	}
	samples := make([]float64, 0, roundTrips)
	for trip := 0; trip < roundTrips; trip++ {
		start := time.Now()
		_, err := requester.Request("session.identity", []byte(`{}`), 5*time.Second)
		check(err)
		samples = append(samples, float64(time.Since(start).Nanoseconds())/1000)
	}
	sort.Float64s(samples)
	figure("nats_round_trip_p50", percentile(samples, 0.5), "us")
	figure("nats_round_trip_p99", percentile(samples, 0.99), "us")
	requester.Close()
	responder.Close()

	// Events per second to one subscriber.
	subscriber := connect()
	received := 0
	done := make(chan struct{})
	var finish time.Time
	_, err = subscriber.Subscribe("incident.1", func(*nats.Msg) {
		received++
		if received == events {
			finish = time.Now()
			close(done)
		}
	})
	check(err)
	check(subscriber.Flush())
	publisher := connect()
	start := time.Now()
	for sent := 0; sent < events; sent++ {
		check(publisher.Publish("incident.1", event))
	}
	check(publisher.Flush())
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		finish = time.Now()
	}
	figure("nats_events_per_second", float64(received)/finish.Sub(start).Seconds(), "/s")
	figure("nats_events_received", float64(received), "events")
	subscriber.Close()
	publisher.Close()
}

// One event to many subscribers, each on its own connection: the time until each had it.
func fanOut(connect func() *nats.Conn, event []byte, subscribers int, rounds int) {
	publisher := connect()
	var mutex sync.Mutex
	arrivals := make([]time.Time, 0, subscribers)
	var wait sync.WaitGroup
	connections := make([]*nats.Conn, subscribers)
	for index := range connections {
		connections[index] = connect()
		_, err := connections[index].Subscribe("incident.fanout", func(*nats.Msg) {
			mutex.Lock()
			arrivals = append(arrivals, time.Now())
			mutex.Unlock()
			wait.Done()
		})
		check(err)
		check(connections[index].Flush())
	}
	var p99s []float64
	for round := 0; round < rounds; round++ {
		mutex.Lock()
		arrivals = arrivals[:0]
		mutex.Unlock()
		wait.Add(subscribers)
		sent := time.Now()
		check(publisher.Publish("incident.fanout", event))
		check(publisher.Flush())
		wait.Wait()
		mutex.Lock()
		times := make([]float64, len(arrivals))
		for index, arrival := range arrivals {
			times[index] = float64(arrival.Sub(sent).Nanoseconds()) / 1e6
		}
		mutex.Unlock()
		sort.Float64s(times)
		p99s = append(p99s, percentile(times, 0.99))
		time.Sleep(50 * time.Millisecond)
	}
	sort.Float64s(p99s)
	figure("nats_fanout_p99", percentile(p99s, 0.5), "ms")
	for _, connection := range connections {
		connection.Close()
	}
	publisher.Close()
}

func figure(name string, value float64, unit string) {
	line, _ := json.Marshal(map[string]interface{}{"figure": name, "value": value, "unit": unit})
	fmt.Println(string(line))
}

func percentile(sorted []float64, fraction float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	index := int(float64(len(sorted)) * fraction)
	if index >= len(sorted) {
		index = len(sorted) - 1
	}
	return sorted[index]
}

// A certificate for 127.0.0.1, made now, and its key, as PEM files in folder.
func selfSigned(folder string) (string, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	template := x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, &template, &template, &key.PublicKey, key)
	check(err)
	keyBytes, err := x509.MarshalECPrivateKey(key)
	check(err)
	certificate, keyFile := filepath.Join(folder, "server.pem"), filepath.Join(folder, "server.key")
	check(os.WriteFile(certificate, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	check(os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyBytes}), 0o600))
	return certificate, keyFile
}

func freePort() int {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsbench:", err)
		os.Exit(1)
	}
}
