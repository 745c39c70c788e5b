//! `completion/complete`: channel names for the prompts' `channel` argument and for the
//! channel resource template's `name`, those the caller may read, starting with what was typed.

use super::prompts;
use super::resources;
use crate::http::request::path_segment;
use crate::relay::{Caller, Relay};
use rmcp::model::{ArgumentInfo, CompleteResult, CompletionInfo, ErrorData, Reference};

pub fn complete(
    relay: &Relay,
    caller: &Caller,
    reference: &Reference,
    argument: &ArgumentInfo,
) -> Result<CompleteResult, ErrorData> {
    let channel_argument = match reference {
        Reference::Prompt(prompt) => {
            if !prompts::NAMES.contains(&prompt.name.as_str()) {
                let known = prompts::NAMES.join(", ");
                return Err(ErrorData::invalid_params(
                    format!("no prompt {:?}; the prompts are {known}", prompt.name),
                    None,
                ));
            }
            argument.name == "channel"
        }
        Reference::Resource(template) => {
            if template.uri != resources::TEMPLATE {
                return Err(ErrorData::invalid_params(
                    format!(
                        "no resource template {:?}; the one template is {}",
                        template.uri,
                        resources::TEMPLATE
                    ),
                    None,
                ));
            }
            argument.name == "name"
        }
        _ => return Err(ErrorData::invalid_params("ref: must be ref/prompt or ref/resource", None)),
    };
    // Other arguments (a sender's name) have nothing to complete from.
    let names = match channel_argument {
        true => relay.channel_names(caller, &argument.value),
        false => Vec::new(),
    };
    let total = names.len();
    let mut values: Vec<String> = names.into_iter().take(CompletionInfo::MAX_VALUES).collect();
    if matches!(reference, Reference::Resource(_)) {
        // The template's `name` is a URI segment.
        values = values.iter().map(|name| path_segment(name)).collect();
    }
    let has_more = total > values.len();
    let info = CompletionInfo::with_pagination(values, u32::try_from(total).ok(), has_more)
        .map_err(|e| ErrorData::internal_error(e, None))?;
    Ok(CompleteResult::new(info))
}
