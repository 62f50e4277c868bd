//! From a request to the command that runs it: menu lookup with the router's trap texts.

use super::{RouterState, Trap};
use crate::proto::{Reply, Request};
use crate::sim::menus::{self, MenuSpec};

impl RouterState {
    /// Executes a non-streaming command on a menu.
    pub(crate) fn execute(&mut self, req: &Request) -> Result<Vec<Reply>, Trap> {
        self.tick();
        let (spec, cmd) = resolve(&req.command)?;
        match cmd {
            "print" | "getall" => self.print(spec, req),
            "add" => self
                .add(spec, &req.attributes)
                .map(|id| vec![Reply::done().attr("ret", id)]),
            "set" => self.set(spec, req).map(|()| vec![Reply::done()]),
            "unset" => self.unset(spec, req).map(|()| vec![Reply::done()]),
            "remove" => self.remove(spec, req).map(|()| vec![Reply::done()]),
            "disable" | "enable" => self
                .toggle(spec, req, cmd == "disable")
                .map(|()| vec![Reply::done()]),
            "login" => {
                let user = req.get("user").unwrap_or("");
                let password = req.get("password").unwrap_or("");
                let mac = req.get("mac-address").unwrap_or("");
                let ip = req.get("ip").unwrap_or("");
                self.hotspot_login(user, Some(password), mac, ip, "http-pap")
                    .map(|_| vec![Reply::done()])
            }
            other => Err(Trap::cat(format!("no such command or directory ({other})"), 0)),
        }
    }

    /// Adds an item as an operator would (control handle): same validation as `add`.
    pub(crate) fn add_row(&mut self, menu: &str, attrs: &[(&str, &str)]) -> Result<String, Trap> {
        let spec = menus::menu(menu).ok_or_else(|| Trap::cat(format!("no such menu {menu}"), 0))?;
        let attrs: Vec<(String, String)> = attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.add(spec, &attrs)
    }
}

/// Splits `/menu/path/command` and finds the menu, with the router's trap texts for unknown
/// paths.
pub(crate) fn resolve(command: &str) -> Result<(&'static MenuSpec, &str), Trap> {
    let (path, cmd) = command.rsplit_once('/').unwrap_or(("", command));
    if let Some(spec) = menus::menu(path) {
        if spec.has_command(cmd) {
            return Ok((spec, cmd));
        }
        return Err(Trap::cat(format!("no such command or directory ({cmd})"), 0));
    }
    if menus::is_dir(command) {
        return Err(Trap::cat("no such command prefix", 0));
    }
    // The first segment that is not a known directory.
    let mut prefix = String::new();
    for seg in command.split('/').filter(|s| !s.is_empty()) {
        prefix.push('/');
        prefix.push_str(seg);
        if !menus::is_dir(&prefix) {
            return Err(Trap::cat(format!("no such command or directory ({seg})"), 0));
        }
    }
    Err(Trap::cat("no such command prefix", 0))
}
