// Interop peer on Pion WebRTC v3 (Debian's golang-github-pion-webrtc.v3-dev)
// speaking the JSON signaling of tests/peers/js/peer-wrtc.js through its
// relay.js, in its --mode echo: both roles create the negotiated channel
// id 5, the offerer also "control"; every message on every channel comes
// back unchanged, and the text "__dcinfo__" is answered with the channel's
// parameters. Channels are detached and read with a 256 KiB buffer: Pion's
// OnMessage stops at 65,535 bytes.
//
//	pionpeer --url ws://127.0.0.1:PORT/room --role offerer|answerer [--timeout 120]
//
// With --media it instead sends back what it receives on media: one Opus
// and one VP8 track of its own (added before the offer or answer) carry
// the RTP of the first remote track of their kind, as Pion's reflect
// example does (payloads unchanged; SSRC and payload type its own).
//
//	pionpeer --url ... --role ... --media
//
// Built in GOPATH mode (GO111MODULE=off GOPATH=tests/peers/pion:/usr/share/gocode).
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/datachannel"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v3"
)

type signal struct {
	Type          string  `json:"type"`
	SDP           string  `json:"sdp,omitempty"`
	Candidate     string  `json:"candidate,omitempty"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
}

type dcInfo struct {
	Label             string  `json:"label"`
	Protocol          string  `json:"protocol"`
	Ordered           bool    `json:"ordered"`
	MaxRetransmits    *uint16 `json:"maxRetransmits"`
	MaxPacketLifeTime *uint16 `json:"maxPacketLifeTime"`
	Negotiated        bool    `json:"negotiated"`
	ID                *uint16 `json:"id"`
}

const negotiatedID = 5

func main() {
	url := flag.String("url", "", "relay URL with room")
	role := flag.String("role", "answerer", "offerer or answerer")
	timeout := flag.Int("timeout", 120, "seconds before giving up")
	media := flag.Bool("media", false, "echo audio and video RTP instead of data channels")
	iceServers := flag.String("ice-servers", "[]", "RTCIceServer list as JSON (urls, username, credential)")
	relay := flag.Bool("relay", false, "iceTransportPolicy relay: only relayed candidates")
	flag.Parse()
	if *url == "" || (*role != "offerer" && *role != "answerer") {
		log.Fatal("usage: pionpeer --url ws://127.0.0.1:PORT/room --role offerer|answerer")
	}
	log.SetPrefix("[pion " + *role + "/echo] ")
	log.SetFlags(log.Lmicroseconds)
	time.AfterFunc(time.Duration(*timeout)*time.Second, func() {
		log.Printf("timeout %d s, exiting", *timeout)
		os.Exit(3)
	})

	ws, _, err := websocket.DefaultDialer.Dial(*url, nil)
	if err != nil {
		log.Fatalf("signaling: %v", err)
	}
	var wsMu sync.Mutex
	send := func(s signal) {
		wsMu.Lock()
		defer wsMu.Unlock()
		if err := ws.WriteJSON(s); err != nil {
			log.Printf("signaling send: %v", err)
		}
	}

	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.DetachDataChannels()
	// Pion's default codecs (Opus, VP8, ...) and interceptors (NACK,
	// RTCP reports), as webrtc.NewPeerConnection would register them.
	codecs := &webrtc.MediaEngine{}
	if err := codecs.RegisterDefaultCodecs(); err != nil {
		log.Fatalf("codecs: %v", err)
	}
	interceptors := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(codecs, interceptors); err != nil {
		log.Fatalf("interceptors: %v", err)
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(codecs), webrtc.WithInterceptorRegistry(interceptors))
	config := webrtc.Configuration{}
	if err := json.Unmarshal([]byte(*iceServers), &config.ICEServers); err != nil {
		log.Fatalf("--ice-servers: %v", err)
	}
	if *relay {
		config.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(config)
	if err != nil {
		log.Fatalf("NewPeerConnection: %v", err)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		mid := "0"
		if init.SDPMid != nil && *init.SDPMid != "" {
			mid = *init.SDPMid
		}
		index := uint16(0)
		send(signal{Type: "candidate", Candidate: init.Candidate, SDPMid: &mid, SDPMLineIndex: &index})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		log.Printf("connectionState %s", s)
		if s == webrtc.PeerConnectionStateFailed {
			os.Exit(4)
		}
	})
	if *media {
		echoMedia(pc)
	} else {
		echoChannels(pc, *role == "offerer")
	}
	if *role == "offerer" {
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			log.Fatalf("CreateOffer: %v", err)
		}
		if err := pc.SetLocalDescription(offer); err != nil {
			log.Fatalf("SetLocalDescription: %v", err)
		}
		send(signal{Type: "offer", SDP: offer.SDP})
	}

	var pending []webrtc.ICECandidateInit
	remoteSet := false
	for {
		var m signal
		if err := ws.ReadJSON(&m); err != nil {
			log.Printf("signaling closed: %v", err)
			break
		}
		switch m.Type {
		case "offer", "answer":
			kind := webrtc.SDPTypeAnswer
			if m.Type == "offer" {
				kind = webrtc.SDPTypeOffer
			}
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: kind, SDP: m.SDP}); err != nil {
				log.Fatalf("SetRemoteDescription(%s): %v", m.Type, err)
			}
			remoteSet = true
			for _, c := range pending {
				addCandidate(pc, c)
			}
			pending = nil
			if m.Type == "offer" {
				answer, err := pc.CreateAnswer(nil)
				if err != nil {
					log.Fatalf("CreateAnswer: %v", err)
				}
				if err := pc.SetLocalDescription(answer); err != nil {
					log.Fatalf("SetLocalDescription: %v", err)
				}
				send(signal{Type: "answer", SDP: answer.SDP})
			}
		case "candidate":
			if m.Candidate == "" {
				continue
			}
			c := webrtc.ICECandidateInit{Candidate: m.Candidate, SDPMid: m.SDPMid, SDPMLineIndex: m.SDPMLineIndex}
			if remoteSet {
				addCandidate(pc, c)
			} else {
				pending = append(pending, c)
			}
		case "bye", "peer-left":
			log.Printf("remote said %s", m.Type)
			_ = pc.Close()
			return
		}
	}
	_ = pc.Close()
}

// echoChannels makes the channels of --mode echo: the negotiated id 5,
// "control" on the offerer, and every channel the other side opens.
func echoChannels(pc *webrtc.PeerConnection, offerer bool) {
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		log.Printf("remote channel %s", dc.Label())
		echo(dc)
	})
	yes, id := true, uint16(negotiatedID)
	negotiated, err := pc.CreateDataChannel("negotiated-5", &webrtc.DataChannelInit{Negotiated: &yes, ID: &id})
	if err != nil {
		log.Fatalf("negotiated channel: %v", err)
	}
	echo(negotiated)
	if offerer {
		control, err := pc.CreateDataChannel("control", nil)
		if err != nil {
			log.Fatalf("control channel: %v", err)
		}
		echo(control)
	}
}

// echoMedia adds an Opus and a VP8 track and sends on each the RTP of the
// first remote track of its kind.
func echoMedia(pc *webrtc.PeerConnection) {
	locals := map[webrtc.RTPCodecType]*webrtc.TrackLocalStaticRTP{}
	for kind, mime := range map[webrtc.RTPCodecType]string{
		webrtc.RTPCodecTypeAudio: webrtc.MimeTypeOpus,
		webrtc.RTPCodecTypeVideo: webrtc.MimeTypeVP8,
	} {
		track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime}, "echo-"+kind.String(), "pion")
		if err != nil {
			log.Fatalf("local %s track: %v", kind, err)
		}
		sender, err := pc.AddTrack(track)
		if err != nil {
			log.Fatalf("AddTrack %s: %v", kind, err)
		}
		// Reads RTCP so the interceptors (NACK, reports) run.
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := sender.Read(buf); err != nil {
					return
				}
			}
		}()
		locals[kind] = track
	}
	var mu sync.Mutex
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		mu.Lock()
		local := locals[remote.Kind()]
		delete(locals, remote.Kind())
		mu.Unlock()
		if local == nil {
			return
		}
		log.Printf("remote %s track %s, payload type %d", remote.Kind(), remote.Codec().MimeType, remote.PayloadType())
		go func() {
			echoed := 0
			for {
				packet, _, err := remote.ReadRTP()
				if err != nil {
					log.Printf("%d RTP packets of %s echoed", echoed, remote.Kind())
					return
				}
				if err := local.WriteRTP(packet); err != nil {
					log.Printf("echo %s: %v", remote.Kind(), err)
					return
				}
				echoed++
			}
		}()
	})
}

func addCandidate(pc *webrtc.PeerConnection, c webrtc.ICECandidateInit) {
	c.Candidate = strings.TrimPrefix(c.Candidate, "a=")
	if err := pc.AddICECandidate(c); err != nil {
		log.Printf("AddICECandidate(%s): %v", c.Candidate, err)
	}
}

// echo sends every message of the channel back once it opens.
func echo(dc *webrtc.DataChannel) {
	dc.OnOpen(func() {
		info := dcInfo{
			Label: dc.Label(), Protocol: dc.Protocol(), Ordered: dc.Ordered(),
			MaxRetransmits: dc.MaxRetransmits(), MaxPacketLifeTime: dc.MaxPacketLifeTime(),
			Negotiated: dc.Negotiated(), ID: dc.ID(),
		}
		raw, err := dc.Detach()
		if err != nil {
			log.Printf("detach %s: %v", dc.Label(), err)
			return
		}
		log.Printf("channel open: %+v", info)
		go echoLoop(raw, info)
	})
}

func echoLoop(raw datachannel.ReadWriteCloser, info dcInfo) {
	buf := make([]byte, 256*1024+1)
	for {
		n, isString, err := raw.ReadDataChannel(buf)
		if err != nil {
			if err != io.EOF {
				log.Printf("read %s: %v", info.Label, err)
			}
			log.Printf("channel closed: %s", info.Label)
			return
		}
		reply := buf[:n]
		if isString && string(reply) == "__dcinfo__" {
			j, _ := json.Marshal(map[string]dcInfo{"dcinfo": info})
			reply = j
		}
		if _, err := raw.WriteDataChannel(reply, isString); err != nil {
			log.Printf("echo on %s: %v", info.Label, err)
		}
	}
}
