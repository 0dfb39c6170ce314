-- Every connection: business dates are computed in the shop's timezone.
set TimeZone = $timezone;
