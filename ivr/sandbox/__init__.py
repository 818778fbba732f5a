"""The sandbox carrier: speaks Twilio's protocol locally so flows run end to end without Twilio."""
