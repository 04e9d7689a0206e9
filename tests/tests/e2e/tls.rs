//! HTTPS: the server serves `--tls-cert`/`--tls-key`, the client verifies the certificate
//! (the system's authorities and `--ca-cert`), refuses a server it cannot verify before
//! sending anything, and the server takes a new certificate on SIGHUP without dropping the
//! connections it has.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fieldsync_e2e::Client;
use fieldsync_e2e::server::{Server, create_org};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A certificate authority made for one test.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        Authority {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// Write this authority's certificate to `path`.
    fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.issuer.pem()).expect("write the CA");
        path.to_owned()
    }

    /// Issue a server certificate for 127.0.0.1 and localhost into `cert` and `key`.
    fn issue(&self, cert: &Path, key: &Path) {
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("params");
        let leaf_key = KeyPair::generate().expect("server key");
        let leaf = params
            .signed_by(&leaf_key, &self.issuer)
            .expect("server certificate");
        std::fs::write(cert, leaf.pem()).expect("write the certificate");
        std::fs::write(key, leaf_key.serialize_pem()).expect("write the key");
    }
}

/// A reqwest client trusting only `ca`.
fn https_client(ca: &Path) -> reqwest::blocking::Client {
    let pem = std::fs::read(ca).expect("read the CA");
    reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM CA"))
        .build()
        .expect("client")
}

#[test]
fn tls_server_and_client_talk_a_wrong_ca_is_refused_and_sighup_swaps_the_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (first, second) = (Authority::new("Ministry CA"), Authority::new("Other CA"));
    let first_pem = first.write(&dir.path().join("first-ca.pem"));
    let second_pem = second.write(&dir.path().join("second-ca.pem"));
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    first.issue(&cert, &key);
    let data = dir.path().join("data");
    let (_, admin_token) = create_org(&data, "Acme Health");
    let server = Server::start(
        &data,
        &[
            "--tls-cert",
            cert.to_str().expect("path"),
            "--tls-key",
            key.to_str().expect("path"),
        ],
    );
    let url = server.url();
    assert!(url.starts_with("https://"), "{url}");

    // A client that cannot verify the server stops before sending the token, and says how
    // to trust a private authority; the one-time token is still good afterwards.
    let admin = Client::new(&dir.path().join("admin"));
    for ca in [None, Some(&second_pem)] {
        let mut args = vec!["login", "--server", &url, "--token", &admin_token];
        if let Some(ca) = ca {
            args.extend(["--ca-cert", ca.to_str().expect("path")]);
        }
        let err = admin.fails(&args, 1);
        assert!(
            err.contains("did not prove who it is") && err.contains("--ca-cert"),
            "{err}"
        );
    }
    assert!(
        !server.logs().contains("route=/v1/login"),
        "no request reached the server: {}",
        server.logs()
    );
    // Trusting the right authority, from config.toml, works for every later command.
    std::fs::write(
        admin.home().join("config.toml"),
        format!("ca_cert = {:?}\n", first_pem.to_str().expect("path")),
    )
    .expect("write config.toml");
    admin.login(&url, &admin_token);
    assert!(admin.ok(&["whoami"]).contains("Acme Health"));

    // A connection opened before the swap...
    let kept = https_client(&first_pem);
    let health = |c: &reqwest::blocking::Client| {
        c.get(format!("{url}/healthz"))
            .send()
            .map(|r| r.status().as_u16())
    };
    assert_eq!(health(&kept).expect("over the first certificate"), 200);

    second.issue(&cert, &key);
    server.hang_up();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.logs().contains("certificate and key read again") {
        assert!(
            Instant::now() < deadline,
            "no reload logged: {}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // ...stays open and answers, while new connections get the new certificate.
    assert_eq!(
        health(&kept).expect("the open connection was not dropped"),
        200
    );
    assert!(
        health(&https_client(&first_pem)).is_err(),
        "a new connection is offered the new certificate"
    );
    assert_eq!(
        health(&https_client(&second_pem)).expect("new certificate"),
        200
    );
    let err = admin.fails(&["whoami"], 1);
    assert!(err.contains("did not prove who it is"), "{err}");
    let whoami = admin.ok(&["whoami", "--ca-cert", second_pem.to_str().expect("path")]);
    assert!(
        whoami.contains("Acme Health"),
        "the flag wins over config.toml"
    );

    // A certificate that cannot be read on SIGHUP is refused and the one in use stays.
    std::fs::write(&cert, "not a certificate").expect("break the file");
    server.hang_up();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.logs().contains("the certificate in use stays") {
        assert!(
            Instant::now() < deadline,
            "no refusal logged: {}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        health(&https_client(&second_pem)).expect("still served"),
        200
    );
}

/// A certificate and key that do not belong together stop the server at start, naming both
/// files, instead of failing every handshake later.
#[test]
fn a_key_that_is_not_the_certificate_s_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Authority::new("Ministry CA");
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    ca.issue(&cert, &key);
    let (_, other_key) = (dir.path().join("other.pem"), dir.path().join("other.key"));
    ca.issue(&dir.path().join("other.pem"), &other_key);
    let out = fieldsync_e2e::server::server_command(&[
        "serve",
        "--data",
        dir.path().join("data").to_str().expect("path"),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().expect("path"),
        "--tls-key",
        other_key.to_str().expect("path"),
    ]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("server.pem") && out.stderr.contains("other.key"),
        "{}",
        out.stderr
    );
}
