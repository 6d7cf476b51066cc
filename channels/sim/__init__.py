"""What every channel simulator shares: settings, faults, notifications, state, control."""
