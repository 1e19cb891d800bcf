// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Vigil",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vigil", targets: ["vigil"]),
        .library(name: "Bus", targets: ["Bus"]),
        .library(name: "Incidents", targets: ["Incidents"]),
        .library(name: "Geo", targets: ["Geo"]),
        .library(name: "Streams", targets: ["Streams"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The end-to-end tests' child processes (the vigil binary, pyzmq clients, ffmpeg).
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
        // The operator console's web server.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // The cluster's private link: mutual TLS 1.3 between coordinators, with a certificate made from the cluster's key.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.0"),
    ],
    targets: [
        // MARK: C libraries (Debian 12 -dev packages; see scripts/setup)
        // libzmq's pkg-config adds flags SwiftPM refuses, so it is linked without pkgConfig.
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ"),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3"),
        .systemLibrary(name: "CDqlite", path: "Sources/CDqlite", pkgConfig: "dqlite"),
        .systemLibrary(name: "CFFmpeg", path: "Sources/CFFmpeg", pkgConfig: "libavformat"),
        .systemLibrary(name: "CGEOS", path: "Sources/CGEOS", pkgConfig: "geos"),
        .systemLibrary(name: "CPROJ", path: "Sources/CPROJ", pkgConfig: "proj"),
        // epoll and eventfd (glibc's headers; nothing to link).
        .systemLibrary(name: "CLinuxEvents", path: "Sources/CLinuxEvents"),

        // MARK: Modules
        // Stable error codes: one vocabulary per boundary, one error type made from it.
        .target(name: "ErrorVocabulary"),
        .target(
            name: "Geo",
            dependencies: ["CGEOS", "CPROJ", "ErrorVocabulary"]
        ),
        .target(
            name: "Incidents",
            dependencies: [
                "CSQLite", "CDqlite", "Geo", "ErrorVocabulary",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Bus",
            dependencies: [
                "CZeroMQ", "ErrorVocabulary", .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // The camera registries of the fixtures, generated from the open data (`vigil fixtures generate`).
        .target(
            name: "RegistryFixtures",
            dependencies: ["Geo"]
        ),
        // `vigil bench geo|bus|streams`: each figure beside its target and its peer (no part of the library products).
        .target(
            name: "VigilBenchmarks",
            dependencies: [
                "Bus", "CZeroMQ", "CLinuxEvents", "Geo", "Incidents", "Streams", "VigilProtocol", "RegistryFixtures", .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Streams",
            dependencies: ["CFFmpeg", "ErrorVocabulary"]
        ),

        // MARK: The protocol: every operation's body and result, defined once for the server and its clients
        .target(
            name: "VigilProtocol",
            dependencies: ["Bus", "Incidents", "Geo", "Streams", "ErrorVocabulary", .product(name: "Crypto", package: "swift-crypto")]
        ),

        // MARK: The server, as libraries
        // The relay: feeds, views, links, relay nodes and tickets (used by `vigil serve` and `vigil relay`).
        .target(
            name: "MediaRelay",
            dependencies: [
                "Bus", "Incidents", "Geo", "Streams", "VigilProtocol", "CLinuxEvents",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The wire between a cluster's coordinators: dqlite's Raft and SQL connections over mutual TLS.
        .target(
            name: "ClusterLink",
            dependencies: [
                "Incidents",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The coordinator: dispatch, channels and what each agency may see of them, keys, audit checkpoints.
        .target(
            name: "Coordinator",
            dependencies: [
                "Bus", "Incidents", "Geo", "Streams", "MediaRelay", "VigilProtocol", "ClusterLink",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // The operator console: a web server for browsers, acting for logged-in users through the bus's operations.
        .target(
            name: "Console",
            dependencies: [
                "Bus", "Coordinator", "VigilProtocol", "Incidents",
                "ErrorVocabulary",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.embedInCode("Assets/index.html"), .embedInCode("Assets/console.js"), .embedInCode("Assets/console.css")]
        ),

        // MARK: Executable
        .executableTarget(
            name: "vigil",
            dependencies: [
                "Bus", "VigilBenchmarks", "RegistryFixtures", "ErrorVocabulary", "Incidents", "Geo", "Streams", "MediaRelay", "Coordinator", "Console", "VigilProtocol",
                "ClusterLink",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["RegistryFixtures"], path: "Tests/TestSupport"),
        .testTarget(name: "GeoTests", dependencies: ["Geo", "TestSupport"]),
        .testTarget(name: "IncidentsTests", dependencies: ["Incidents", "ClusterLink", "Geo", "VigilProtocol", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "BusTests", dependencies: ["Bus", "TestSupport"]),
        .testTarget(name: "StreamsTests", dependencies: ["Streams", "TestSupport"]),
        // The relay's decisions (RelayState) driven by the test's own instants, tickets and the node's authority.
        .testTarget(
            name: "MediaRelayTests", dependencies: ["MediaRelay", "Geo", "Streams", "Bus", "VigilProtocol", "TestSupport", .product(name: "Logging", package: "swift-log")]),
        // Geo only to place test cameras in the metric grid; everything else goes through the binary.
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "Bus", "Geo", "TestSupport", .product(name: "Subprocess", package: "swift-subprocess"), .product(name: "SystemPackage", package: "swift-system"),
            ]),
        // The coordinator's parts, and a whole coordinator in the test process, its clients over inproc://.
        .testTarget(
            name: "CoordinatorTests",
            dependencies: [
                "Coordinator", "Console", "MediaRelay", "VigilProtocol", "Bus", "Incidents", "Geo", "Streams", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
