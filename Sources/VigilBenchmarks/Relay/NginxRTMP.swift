import Foundation
import Glibc

/// The peer: Debian's nginx with `libnginx-mod-rtmp` on a free loopback port, one process
/// (no master, so that its CPU time is one process's), its `live` application fed the bench's
/// stream by ffmpeg (`-re`, looped, stream copy to FLV).
final class NginxRTMP {
    struct Installation {
        let nginx: String
        let module: String

        static func find() -> Installation? {
            let nginx = "/usr/sbin/nginx", module = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
            let files = FileManager.default
            return files.isExecutableFile(atPath: nginx) && files.fileExists(atPath: module) ? Installation(nginx: nginx, module: module) : nil
        }
    }

    let port: Int
    private let server: Process
    private let publisher: Process
    var pid: Int32 { server.processIdentifier }

    init(installation: Installation, folder: URL, stream: String, ffmpeg: String) throws {
        let prefix = folder.appendingPathComponent("nginx")
        try FileManager.default.createDirectory(at: prefix.appendingPathComponent("logs"), withIntermediateDirectories: true)
        port = try freeLoopbackPort()
        let configuration = prefix.appendingPathComponent("nginx.conf")
        // nginx-rtmp's defaults but for the chunk size of 4096 its documentation recommends.
        try """
            load_module \(installation.module);
            daemon off;
            master_process off;
            worker_processes 1;
            error_log \(prefix.path)/logs/error.log warn;
            pid \(prefix.path)/nginx.pid;
            events { worker_connections 4096; }
            rtmp {
                server {
                    listen 127.0.0.1:\(port);
                    chunk_size 4096;
                    application live { live on; }
                }
            }
            """.write(to: configuration, atomically: true, encoding: .utf8)
        server = Process()
        server.executableURL = URL(fileURLWithPath: installation.nginx)
        server.arguments = ["-p", prefix.path, "-c", configuration.path, "-e", "\(prefix.path)/logs/error.log"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        Thread.sleep(forTimeInterval: 0.5)
        guard server.isRunning else { throw BenchSetupFailure("nginx did not start (see \(prefix.path)/logs/error.log)") }
        publisher = Process()
        publisher.executableURL = URL(fileURLWithPath: ffmpeg)
        publisher.arguments = ["-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", stream, "-c", "copy", "-f", "flv",
                               "rtmp://127.0.0.1:\(port)/live/camera"]
        publisher.standardInput = FileHandle.nullDevice
        publisher.standardOutput = FileHandle.nullDevice
        publisher.standardError = FileHandle.nullDevice
        try publisher.run()
        Thread.sleep(forTimeInterval: 3)  // publishing, past its first keyframe
        guard publisher.isRunning else {
            kill(server.processIdentifier, SIGKILL)
            throw BenchSetupFailure("ffmpeg could not publish to nginx-rtmp")
        }
    }

    deinit {
        // SIGKILL: both inherit this process's blocked signals (libdispatch blocks them in its
        // threads), so SIGTERM would wait forever.
        for process in [publisher, server] where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
